"""Adapter files on the LoRA page: download a trained adapter (PEFT save_pretrained, zipped), or load
one onto a private copy of the current model and compare it. Uploading a zip is the way in; a folder
on the server is read only under the temp folder or the app's own folder (or anywhere, if the server
sets LAB_ALLOW_LOCAL_ADAPTERS=1), since its name is typed in a browser."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import streamlit as st

from core.interp.finetune.adapter_files import ALLOW_ANY_FOLDER_ENV, AdapterLoadError, allowed_folder_roots
from core.interp.finetune.adapter_io import adapter_zip, load_adapter
from core.interp.finetune.forgetting import SkillSuite
from core.interp.finetune.tasks import make_task
from ui.common.page import show_problem
from ui.lora.compute import MAX_RUNS, LoraResult, current_result, keep, make_room

LOADED = "Loaded adapter"
MESSAGE_KEY = "lora_loaded_message"  # shown once, after the rerun that draws the loaded adapter


@dataclass
class AdapterRun:
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


def _folder_help() -> str:
    roots = allowed_folder_roots()
    if roots is None:
        return f"Any folder on the server ({ALLOW_ANY_FOLDER_ENV}=1 is set)."
    return (f"For safety, only folders under {' or '.join(f'`{r}`' for r in roots)} are read; the server can "
            f"allow any folder with the environment variable {ALLOW_ANY_FOLDER_ENV}=1. Uploading a zip "
            "always works.")


def loader(lm, task_key: str, seed: int) -> None:
    """Upload a zip (or name a folder on the server); the adapter joins the current result as
    "Loaded adapter", letting go of the oldest runs if more than MAX_RUNS copies would be kept."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")
    left, right = st.columns(2)
    upload = left.file_uploader("An adapter zip", type="zip", key="lora_upload")
    folder = right.text_input("... or a folder on the server", key="lora_adapter_dir",
                              placeholder=f"{tempfile.gettempdir()}/my_adapter", help=_folder_help())
    if not st.button("Load adapter", key="lora_load", icon=":material/upload:"):
        return
    source = upload.getvalue() if upload is not None else folder.strip()
    if not source:
        show_problem("Choose a zip file or type a folder first.")
        return
    result = current_result(lm)
    drop, held = make_room(lm, result, LOADED)
    try:
        loaded = load_adapter(lm, source, held_bytes=held)
    except AdapterLoadError as err:
        show_problem(str(err))
        return
    if result is None:
        task = make_task(task_key, seed=seed)
        result = LoraResult(None, lm.spec, task, SkillSuite.build(lm, task, seed=seed))
    for label in drop:
        del result.runs[label]
    base = result.suite.measure(lm)
    result.runs[LOADED] = AdapterRun(loaded.model, loaded.peft_model, loaded.config,
                                     [(0, base), (0, result.suite.measure(loaded.model))],
                                     n_trainable_=loaded.plan.n_params)
    for memo in result.analysis.values():
        for label in (LOADED, *drop):
            memo.pop(label, None)
    keep(result, lm)
    dropped = (f" To keep at most {MAX_RUNS} copies of the model in memory, the page let go of "
               f"{', '.join(drop)}." if drop else "")
    rank = f" (r = {loaded.plan.rank})" if loaded.plan.rank else ""
    st.session_state[MESSAGE_KEY] = (f"Loaded a {loaded.method.upper()} adapter{rank} with "
                                     f"{loaded.plan.n_params:,} numbers onto a copy of {lm.name}: it is "
                                     "compared with the runs above." + dropped)
    st.rerun()  # redraw the whole page with the adapter in it
