"""Download a trained model: safetensors, config, tokenizer and the training log, zipped
(core.interp.training.export)."""

from __future__ import annotations

import streamlit as st

from core.interp.training.export import model_zip
from core.interp.training.loop import TrainedRun

ZIP_KEY = "training_zip"  # (run id, bytes): built once per run


def download(run: TrainedRun, run_id: str) -> None:
    cached = st.session_state.get(ZIP_KEY)
    if not cached or cached[0] != run_id:
        cached = (run_id, model_zip(run.model, run.task.tokenizer, run.log))
        st.session_state[ZIP_KEY] = cached
    data = cached[1]
    st.download_button(f"Download the model (.zip, {len(data) / 1024:.0f} KB)", data,
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
