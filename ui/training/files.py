"""Download a trained model: safetensors, config, tokenizer and the training log, zipped
(core.interp.training.export)."""

from __future__ import annotations

import streamlit as st

from core.interp.training.export import model_zip
from core.interp.training.loop import TrainedRun


def download(run: TrainedRun, run_id: str) -> None:
    """The zip is built when the button is clicked (not on every rerun, and not kept in the session)."""
    weights_kb = 4 * sum(p.numel() for p in run.model.parameters()) / 1024
    st.download_button(f"Download the model (.zip, {weights_kb:,.0f} KB of weights)",
                       lambda: model_zip(run.model, run.task.tokenizer, run.log),
                       file_name=f"trained_{run_id}.zip", mime="application/zip", on_click="ignore",
                       icon=":material/download:", key="train_download")
    words = ("config.json, model.safetensors, the tokenizer and training_log.json: unzip it and type the "
             "folder's path into this lab's model picker")
    if run.settings.model.block_norms:
        words += ", or load it with transformers' from_pretrained."
    else:
        words += (". This model has no LayerNorm inside its blocks, which its config records for this lab's "
                  "loader; transformers' from_pretrained would put those norms back: a different model.")
    st.caption(words)
