"""Saving and loading SAEs on the page: a download button and an upload box.

The file is one .safetensors holding W_enc, b_enc, W_dec, b_dec and, in its header, the config
(sizes, architecture, hook point, model); core.interp.sae.model.SAE.load reads it back.
"""

from __future__ import annotations

import streamlit as st

from core.interp.sae.file_format import read_notes
from core.interp.sae.model import SAE
from core.models import act_name
from ui.common.page import show_problem
from ui.sae.compute import RUN_KEY, SAERun, analyse
from ui.sae.controls import DEFAULT_DOCS, DOC_CHOICES, READING, SITES

UPLOAD_KEY = "sae_upload_done"  # (file id, problem or "") of the upload already handled
CORPUS_NOTE = "lab_corpus_docs"  # the corpus setting a downloaded SAE was measured on


def download_bytes(run: SAERun) -> bytes:
    """The file the download button serves: the SAE, and the corpus setting it was measured on."""
    return run.sae.to_bytes(notes={CORPUS_NOTE: str(run.n_docs)})


def download(run: SAERun) -> None:
    cfg = run.sae.cfg
    name = f"sae_{cfg.hook_name.replace('.', '_')}_{cfg.d_sae}.safetensors"
    st.download_button("Download this SAE (.safetensors)", download_bytes(run), file_name=name,
                       mime="application/octet-stream", icon=":material/download:",
                       key="sae_download", on_click="ignore")


def upload(lm) -> None:
    """Load an uploaded SAE if it fits the current model; say why not otherwise (for as long as
    that file stays in the upload box)."""
    file = st.file_uploader("Load an SAE saved from this page", type=["safetensors"],
                            key="sae_upload")
    if file is None:
        return
    done = st.session_state.get(UPLOAD_KEY)
    if done and done[0] == file.file_id:
        if done[1]:
            show_problem(done[1])
        return
    sae, problem = _check(lm, file)
    st.session_state[UPLOAD_KEY] = (file.file_id, problem)
    if problem:
        show_problem(problem)
        return
    try:
        with st.spinner(READING, show_time=True):
            n_docs = corpus_docs(file)
            run = SAERun(None, sae, analyse(lm, sae, sae.cfg.hook_name, n_docs), n_docs_measured=n_docs)
    except ValueError as err:  # the checks above should catch everything; the page keeps running
        problem = f"Could not use {file.name!r}: {err}"
        st.session_state[UPLOAD_KEY] = (file.file_id, problem)
        show_problem(problem)
        return
    st.session_state[RUN_KEY] = run
    st.rerun()


def _check(lm, file) -> tuple[SAE | None, str]:
    """The SAE in an uploaded file, or why it cannot be used with lm."""
    try:
        sae = SAE.load(file.getvalue())
    except ValueError as err:
        return None, f"Could not read {file.name!r} as an SAE: {err}"
    cfg = sae.cfg
    if cfg.model_spec and cfg.model_spec != lm.spec:
        return None, (f"{file.name!r} was trained on {cfg.model_spec!r}; pick that model in the "
                      f"sidebar to use it (the current one is {lm.spec!r}).")
    if cfg.d_in != lm.cfg.d_model or cfg.hook_name not in hook_points(lm):
        return None, (f"{file.name!r} reads {cfg.hook_name or 'an unknown hook'} with width "
                      f"{cfg.d_in}; this page's SAEs read the {', '.join(SITES.values())} "
                      f"(width d_model {lm.cfg.d_model}) of one of {lm.name}'s "
                      f"{lm.cfg.n_layers} layers.")
    return sae, ""


def hook_points(lm) -> set[str]:
    """The hooks an SAE from this page can read: the form's sites at every layer of lm."""
    return {act_name(site, layer) for site in SITES for layer in range(lm.cfg.n_layers)}


def corpus_docs(file) -> int:
    """The corpus setting the file's SAE was measured on when it was downloaded, so that an upload
    reports the same numbers; the default corpus for files without that note (or with a value the
    corpus slider does not offer)."""
    try:
        value = read_notes(file.getvalue()).get(CORPUS_NOTE, "")
    except ValueError:
        return DEFAULT_DOCS
    return int(value) if value.isdigit() and int(value) in DOC_CHOICES else DEFAULT_DOCS
