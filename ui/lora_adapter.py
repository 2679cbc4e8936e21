"""Adapter files on the LoRA page: download a trained adapter (PEFT save_pretrained, zipped), or load
one (a zip or a folder on this machine) onto a private copy of the current model and compare it."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from core.interp.adapter_io import AdapterLoadError, adapter_zip, load_adapter
from core.interp.finetune_tasks import make_task
from core.interp.forgetting import SkillSuite
from ui.lora_train import RESULT_KEY, LoraResult, current_result
from ui.page import show_problem

LOADED = "Loaded adapter"
MESSAGE_KEY = "lora_loaded_message"  # shown once, after the rerun that draws the loaded adapter


@dataclass
class LoadedAdapter:
    """An adapter read from a file, shaped like a fitted FineTuner for the page's views."""

    model_: object
    peft_model_: object
    adapter_config: dict
    history_: list  # [(0, base skills), (0, tuned skills)]: before and after, no curve
    config: None = None
    losses_: list = field(default_factory=list)
    steps_done_: int | None = None
    seconds_: float = 0.0
    n_trainable_: int = 0


def downloads(lm, result: LoraResult) -> None:
    zips = result.analysis.setdefault("zips", {})
    runs = {k: r for k, r in result.runs.items() if r.peft_model_ is not None and k != LOADED}
    if not runs:
        st.caption("Full fine-tuning changes every weight: there is no adapter to save, only a whole model.")
        return
    cols = st.columns(len(runs))
    for col, (label, run) in zip(cols, runs.items(), strict=True):
        if label not in zips:
            zips[label] = adapter_zip(run.peft_model_, lm.spec)
        slug = label.lower().replace(" ", "_").replace("=", "")
        col.download_button(f"{label} adapter (.zip, {len(zips[label]) / 1024:.0f} KB)", zips[label],
                            file_name=f"{slug}_adapter.zip", mime="application/zip", on_click="ignore",
                            icon=":material/download:", key=f"lora_download_{slug}")
    st.caption("The zip holds adapter_config.json and adapter_model.safetensors, as written by PEFT's "
               "save_pretrained: load it with PeftModel.from_pretrained(base_model, folder).")


def loader(lm, task_key: str, seed: int) -> None:
    """Upload a zip or name a folder; the adapter joins the current result as "Loaded adapter"."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")
    left, right = st.columns(2)
    upload = left.file_uploader("An adapter zip", type="zip", key="lora_upload")
    folder = right.text_input("... or a folder on this machine", key="lora_adapter_dir",
                              placeholder="/path/to/adapter")
    if not st.button("Load adapter", key="lora_load", icon=":material/upload:"):
        return
    source = upload.getvalue() if upload is not None else folder.strip()
    if not source:
        show_problem("Choose a zip file or type a folder first.")
        return
    try:
        tuned, peft_model, config = load_adapter(lm, source)
    except AdapterLoadError as err:
        show_problem(str(err))
        return
    result = current_result(lm)
    if result is None:
        task = make_task(task_key, seed=seed)
        result = LoraResult(None, lm.spec, task, SkillSuite.build(lm, task, seed=seed))
    base = result.suite.measure(lm.model)
    n = sum(p.numel() for n_, p in peft_model.named_parameters() if "lora_" in n_ or "ia3_" in n_)
    result.runs[LOADED] = LoadedAdapter(tuned, peft_model, config,
                                        [(0, base), (0, result.suite.measure(tuned.model))], n_trainable_=n)
    for memo in result.analysis.values():
        memo.pop(LOADED, None)
    st.session_state[RESULT_KEY] = result
    st.session_state[MESSAGE_KEY] = (f"Loaded a {config['peft_type']} adapter (r = {config.get('r', '-')}) "
                                     f"onto a copy of {lm.name}: it is compared with the runs above.")
    st.rerun()  # redraw the whole page with the adapter in it
