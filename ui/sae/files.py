"""Saving and loading SAEs on the page: a download button and an upload box.

The download is SAELens's folder, zipped: cfg.json beside sae_weights.safetensors (unzip it and
SAELens's SAE.load_from_disk reads it). The upload takes such a zip (from this page or from SAELens)
or a lab .safetensors file. An upload is untrusted: the header and config are checked, then the
dictionary size against the cap and the memory the report would need against the session's budget,
all before any weight is built (core.interp.sae.file_format, ui.common.budget).
"""

from __future__ import annotations

import streamlit as st

from core.interp.sae.file_format import NOTE_PREFIX, SAEFile, open_sae_bytes
from core.interp.sae.model import SAE
from core.interp.sae.report import analysis_bytes
from core.models import act_name
from core.models.budget import MemoryBudgetError
from core.models.hook_names import hook_label
from ui.common.budget import check_session_fits
from ui.common.page import show_problem
from ui.sae.compute import DEFAULT_DOCS, DOC_CHOICES, READING, analyse, n_heldout
from ui.sae.controls import SITES
from ui.sae.training import BUDGET_KEY, SAERun, keep

UPLOAD_KEY = "sae_upload_done"  # (file id, problem or "") of the upload already handled
CORPUS_NOTE = NOTE_PREFIX + "corpus_docs"  # the corpus setting a downloaded SAE was measured on


def folder_name(run: SAERun) -> str:
    cfg = run.sae.cfg
    return f"sae_{cfg.hook_name.replace('.', '_')}_{cfg.d_sae}"


def download_bytes(run: SAERun) -> bytes:
    """The file the download button serves: the SAE as a zipped SAELens folder, noting the corpus
    setting it was measured on."""
    return run.sae.to_zip(notes={CORPUS_NOTE: str(run.n_docs)}, folder_name=folder_name(run))


def download(run: SAERun) -> None:
    st.download_button("Download this SAE (SAELens folder, .zip)", download_bytes(run),
                       file_name=f"{folder_name(run)}.zip", mime="application/zip",
                       icon=":material/download:", key="sae_download", on_click="ignore",
                       help="cfg.json + sae_weights.safetensors. Unzipped, SAELens loads it with "
                            "SAE.load_from_disk(folder); this page loads the .zip back.")


def upload(lm) -> None:
    """Load an uploaded SAE if it fits the current model and the session's memory; say why not
    otherwise (for as long as that file stays in the upload box)."""
    file = st.file_uploader("Load an SAE: a .zip of a SAELens folder (cfg.json + sae_weights.safetensors), "
                            "or a .safetensors saved by this lab", type=["zip", "safetensors"],
                            key="sae_upload")
    if file is None:
        return
    done = st.session_state.get(UPLOAD_KEY)
    if done and done[0] == file.file_id:
        if done[1]:
            show_problem(done[1])
        return
    run, problem = _load(lm, file)
    st.session_state[UPLOAD_KEY] = (file.file_id, problem)
    if problem:
        show_problem(problem)
        return
    keep(run)
    st.rerun()


def _load(lm, file) -> tuple[SAERun | None, str]:
    """The run for an uploaded file, or why it cannot be used (nothing allocated before the checks)."""
    name = repr(file.name[:80])
    try:
        checked = open_sae_bytes(file.getvalue())
    except ValueError as err:
        return None, f"Could not read {name} as an SAE: {err}"
    problem = fits_model(lm, checked, name)
    if problem:
        return None, problem
    n_docs = corpus_docs(checked)
    cfg = checked.config
    try:
        check_session_fits(BUDGET_KEY, analysis_bytes(cfg.d_in, cfg.d_sae, n_heldout(lm, n_docs)),
                           what=f"analysing {name} ({cfg.d_sae:,} features)", lower="a smaller SAE")
        sae = SAE.from_file(checked)
        with st.spinner(READING, show_time=True):
            report = analyse(lm, sae, n_docs)
    except MemoryBudgetError as err:
        return None, str(err)
    except ValueError as err:  # non-finite weights, a TopK file whose rows are not unit length, too dense
        return None, f"Could not use {name}: {err}"
    return SAERun(None, sae, report, n_docs_measured=n_docs, source=f"{file.name[:80]}, {checked.layout}"), ""


def fits_model(lm, checked: SAEFile, name: str) -> str:
    """Why an SAE file cannot be used with lm ("" if it can)."""
    cfg = checked.config
    if cfg.model_spec and cfg.model_spec != lm.spec:
        return (f"{name} was trained on {cfg.model_spec[:100]!r}; pick that model in the sidebar to use "
                f"it (the current one is {lm.spec!r}).")
    if cfg.d_in != lm.cfg.d_model or cfg.hook_name not in hook_points(lm):
        hook = cfg.hook_name[:100]
        where = hook or "an unknown hook"
        if hook and hook_label(hook) != hook:
            where = f"{hook} ({hook_label(hook)})"
        return (f"{name} reads {where} with width {cfg.d_in}; this "
                f"page's SAEs read the {', '.join(SITES.values())} (width d_model {lm.cfg.d_model}) of "
                f"one of {lm.name}'s {lm.cfg.n_layers} layers, or the embeddings.")
    return ""


def hook_points(lm) -> set[str]:
    """The hooks an SAE from this page can read: the form's sites at every layer of lm, and the
    embeddings (the stream before layer 0)."""
    return {act_name(site, layer) for site in (*SITES, "resid_pre") for layer in range(lm.cfg.n_layers)}


def corpus_docs(checked: SAEFile) -> int:
    """The corpus setting the file's SAE was measured on when it was downloaded, so that an upload
    reports the same numbers; the default corpus for files without that note (or with a value the
    corpus slider does not offer)."""
    value = checked.notes.get(CORPUS_NOTE, "")
    return int(value) if value.isdigit() and int(value) in DOC_CHOICES else DEFAULT_DOCS
