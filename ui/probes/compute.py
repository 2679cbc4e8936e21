"""The probes page's computations, cached on the model (ui.common.cache): datasets, the per-layer
report, the causal check. A dataset is keyed by its `key` (the bundled recipe, or the uploaded file's
hash), so a big CSV is not hashed again on every rerun."""

from __future__ import annotations

import ctypes
import gc

import numpy as np
import streamlit as st

from core.interp.probes import activations as probe_acts
from core.interp.probes import causal as probe_causal
from core.interp.probes import data as probe_data
from core.interp.probes import probe as probes
from core.interp.probes.activations import HookPoints
from core.interp.probes.causal import REMOVED_MEANS, REMOVED_PROBE
from core.interp.probes.data import ProbeDataset
from core.models import HookedLM
from ui.common.cache import cache_on_model

SETTINGS = probes.ProbeSettings(cv_folds=5, seed=0)
N_PROMPTS = 200  # prompts of the causal check's behaviour
SAMPLE_CSV = (
    "text,label,token\n"
    "Mary went to the park.,female,Mary\n"
    "John went to the park.,male,John\n"
    "Anna was happy.,female,Anna\n"
    "Tom was happy.,male,Tom\n"
)
DATASET_HASH = {ProbeDataset: lambda d: d.key or (d.texts, d.labels, d.word_types, d.char_spans)}


@st.cache_data(max_entries=32, show_spinner=False)
def bundled(kind: str, n: int) -> ProbeDataset:
    return probe_data.bundled_dataset(kind, n, seed=0)


def from_csv(raw: bytes, name: str) -> ProbeDataset:
    """Check and parse an uploaded CSV (core.interp.probes.data.read_csv: the cheap checks first);
    raises ProbeDataError with what to fix. A file over the size limit is refused before the cache
    would hash it; a parsed one is kept an hour at most, four files at a time."""
    if len(raw) > probe_data.MAX_CSV_BYTES:
        return probe_data.read_csv(raw, name)  # raises at once, on the size alone
    return _parsed_csv(raw, name)


@st.cache_data(max_entries=4, ttl=3600, show_spinner=False)
def _parsed_csv(raw: bytes, name: str) -> ProbeDataset:
    return probe_data.read_csv(raw, name)


def capped(lm: HookedLM, data: ProbeDataset, points: HookPoints) -> tuple[ProbeDataset, str]:
    """The dataset cut to the activation budget for this model and site, and a note if it was cut."""
    width = probe_acts.vector_width(lm.cfg, points.site)
    limit = probe_acts.max_texts(len(points), width)
    if len(data) <= limit:
        return data, ""
    return (probe_data.subsample(data, limit),
            f"Using {limit:,} of {len(data):,} rows, so that {len(points)} layers x {width} "
            "activations per row fit in memory.")


def _give_back_memory() -> None:
    """Return the freed activation buffers to the operating system now: glibc keeps large freed
    blocks in its heap otherwise, and the server's memory would stay high after the run."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator decides
        pass


@cache_on_model(max_entries=16, ttl=3600, show_spinner=False, hash_funcs=DATASET_HASH)
def report(lm: HookedLM, data: ProbeDataset, points: HookPoints, position: str,
           splits: probes.Splits, settings: probes.ProbeSettings = SETTINGS) -> probes.ProbeReport:
    """Collect activations at every layer of `points` (one batched pass) and probe them. Only the
    report is kept; the activations ([layer, batch, d], up to 160 MB) are freed before returning."""
    acts = probe_acts.collect_activations(lm, data.texts, points.hook_names, position, data.char_spans)
    try:
        return probes.fit_probes(acts, data, points, settings, splits)
    finally:
        del acts
        _give_back_memory()


def removed_directions(r: probes.ProbeReport, index: int) -> dict[str, np.ndarray]:
    """The two named directions of layer `index` the causal check removes."""
    return {REMOVED_PROBE: r.directions[index], REMOVED_MEANS: r.mean_diff[index]}


@cache_on_model(max_entries=32, show_spinner=False)
def causal(lm: HookedLM, attribute: str, hook_name: str, directions: dict[str, np.ndarray],
           n_prompts: int = N_PROMPTS) -> probe_causal.CausalResult:
    behaviour = probe_causal.BEHAVIOURS[attribute](n_prompts)
    return probe_causal.causal_check(lm, hook_name, directions, behaviour)
