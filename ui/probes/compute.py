"""The probes page's computations, cached: datasets, the per-layer report, the causal check.

A model cannot be hashed, so cached functions take it as `_lm` next to `spec`, its identity.
"""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from core.interp.probes import activations as probe_acts
from core.interp.probes import causal as probe_causal
from core.interp.probes import data as probe_data
from core.interp.probes import probe as probes
from core.interp.probes.data import ProbeDataError, ProbeDataset

CV_FOLDS = 5
SAMPLE_CSV = (
    "text,label,token\n"
    "Mary went to the park.,female,Mary\n"
    "John went to the park.,male,John\n"
    "Anna was happy.,female,Anna\n"
    "Tom was happy.,male,Tom\n"
)


@st.cache_data(max_entries=32, show_spinner=False)
def bundled(kind: str, n: int) -> ProbeDataset:
    return probe_data.bundled_dataset(kind, n, seed=0)


@st.cache_data(max_entries=8, show_spinner=False)
def from_csv(raw: bytes, name: str) -> ProbeDataset:
    """Parse and validate an uploaded CSV; raises ProbeDataError with what to fix."""
    try:
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=True,
                         skipinitialspace=True)
    except UnicodeDecodeError as err:
        raise ProbeDataError("The file is not UTF-8 text; save it as a UTF-8 CSV.") from err
    except pd.errors.EmptyDataError as err:
        raise ProbeDataError("The file is empty.") from err
    except pd.errors.ParserError as err:
        raise ProbeDataError(f"The file is not a valid CSV: {err}".strip()) from err
    return probe_data.dataset_from_table(df, name=name)


def capped(lm, data: ProbeDataset, site: str) -> tuple[ProbeDataset, str]:
    """The dataset cut to the memory budget for this model and site, and a note if it was cut."""
    labels, _ = probe_acts.hook_points(lm.cfg.n_layers, site)
    width = lm.cfg.d_mlp if site == "mlp_post" else lm.cfg.d_model
    limit = probe_acts.max_texts(len(labels), width)
    if len(data) <= limit:
        return data, ""
    return (probe_data.subsample(data, limit),
            f"Using {limit:,} of {len(data):,} rows, so that {len(labels)} layers x {width} "
            f"activations per row fit in memory.")


@st.cache_data(max_entries=32, show_spinner=False)
def report(_lm, spec: str, data: ProbeDataset, site: str, position: str,
           cv_folds: int = CV_FOLDS) -> probes.ProbeReport:
    """Collect activations at every layer of `site` (one batched pass) and probe them."""
    labels, names = probe_acts.hook_points(_lm.cfg.n_layers, site)
    acts = probe_acts.collect_activations(_lm, data.texts, names, position, data.char_spans)
    return probes.fit_probes(acts, data, cv_folds=cv_folds, layer_labels=labels, hook_names=names)


@st.cache_data(max_entries=32, show_spinner=False)
def causal(_lm, spec: str, attribute: str, hook_name: str, directions: dict,
           n_prompts: int = 200) -> probe_causal.CausalResult:
    behaviour = probe_causal.BEHAVIOURS[attribute](n_prompts)
    return probe_causal.causal_check(_lm, hook_name, directions, behaviour)
