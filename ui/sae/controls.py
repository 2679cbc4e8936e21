"""The SAE page's controls: where the SAE reads (a layer, with the lab's picture of it) and the
training form. Every setting that defines the experiment has a stable key and is bound to the URL,
so a link reproduces the run (after pressing Train)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.interp.sae.train import TrainConfig
from core.models import act_name
from core.models.hook_names import hook_label, stream_hook
from ui.common.layers import show_layer, stream_layer_select
from ui.sae.compute import DEFAULT_DOCS, DOC_CHOICES, MAX_FLOATS, corpus, corpus_note, max_tokens

SITES = {"resid_post": "residual stream", "mlp_out": "MLP output", "attn_out": "attention output"}
EXPANSIONS = [2, 4, 8, 16, 32]
L1_VALUES = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0]
K_VALUES = [1, 2, 4, 8, 16, 24, 32, 48, 64]
LEARNING_RATES = [3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2]
STEP_CHOICES = [100, 200, 300, 500, 800, 1000, 1500, 2000, 3000]
BATCH = 1024
# The defaults, and what a run with them takes from pressing Train to the result (activations read,
# 800 steps with the spliced-loss evaluations, the report), on one torch thread, by matrix-product
# format: benchmarks/bench_sae.py's "SAE page default run", median of its repeats on a quiet 2-core
# Xeon with AMX (load 1.0-1.1, 2026-12-07): 5.24 s in bfloat16, 7.55 s in float32; a later run (load
# 1.2) 5.62 s and 8.13 s. Another CPU takes another time: the page quotes these as what this machine
# measured.
DEFAULTS = {"expansion": 4, "l1": 0.5, "k": 16, "lr": 3e-3, "steps": 800}
MEASURED_DEFAULT_S = {"bfloat16": 5.0, "float32": 8.0}


@dataclass(frozen=True)
class Experiment:
    hook_name: str
    n_docs: int
    config: TrainConfig

    @property
    def sparsity(self) -> str:
        c = self.config
        return f"k = {c.k}" if c.architecture == "topk" else f"L1 = {c.l1_coefficient:g}"

    def label(self) -> str:
        c = self.config
        arch = "TopK" if c.architecture == "topk" else "ReLU + L1"
        return f"{arch}, {self.sparsity}, {c.expansion}x, {c.steps} steps, seed {c.seed}"

    def key(self) -> str:
        """Everything that makes one run differ from another (the prediction step's context)."""
        c = self.config
        return f"{self.hook_name}|{self.n_docs}|{self.label()}|lr {c.lr:g}"


def default_layer(n_layers: int) -> int:
    """The middle of the model: the stream after this layer sits halfway through the blocks."""
    return max(0, n_layers // 2 - 1)


def where_to_read(lm) -> str:
    """The site and layer widgets, and the picture of where "layer L" is; returns the hook name."""
    n_layers = lm.cfg.n_layers
    a, b = st.columns([1, 2])
    site = a.selectbox("Read", list(SITES), format_func=SITES.get, key="sae_site", bind="query-params",
                       help="Residual stream: the stream after layer L (what layer L + 1 reads). Or what "
                            "the MLP or the attention of layer L adds to it.")
    with b:  # the embeddings have no attention or MLP output: "embed" is offered for the stream only
        layer = stream_layer_select(n_layers, key="sae_layer", default=default_layer(n_layers),
                                    include_embeddings=site == "resid_post")
    hook = stream_hook(layer) if site == "resid_post" else act_name(site, layer)
    if site == "resid_post":
        show_layer(n_layers, layer)
    else:
        st.caption(f"The SAE reads `{hook}`: {hook_label(hook)} (before it is added to the stream).")
    return hook


def training_form(lm, hook_name: str) -> tuple[Experiment, bool]:
    """The form; returns the experiment it describes and whether Train was pressed."""
    with st.form("sae_form", border=True):
        a, b, c, d = st.columns(4)
        expansion = a.select_slider("Expansion (d_sae / d_model)", EXPANSIONS, value=DEFAULTS["expansion"],
                                    format_func=lambda v: f"{v}x", key="sae_expansion",
                                    bind="query-params")
        arch = b.radio("Sparsity by", ["relu", "topk"], horizontal=True, key="sae_arch",
                       format_func={"relu": "ReLU + L1", "topk": "TopK"}.get, bind="query-params")
        l1 = c.select_slider("L1 coefficient (ReLU)", L1_VALUES, value=DEFAULTS["l1"], key="sae_l1",
                             bind="query-params", help="Used by ReLU + L1: larger means sparser.")
        k = d.select_slider("k (TopK)", K_VALUES, value=DEFAULTS["k"], key="sae_k", bind="query-params",
                            help="Used by TopK: active features per token.")
        a, b, c, d = st.columns(4)
        lr = a.select_slider("Learning rate", LEARNING_RATES, value=DEFAULTS["lr"], key="sae_lr",
                             format_func=lambda v: f"{v:g}", bind="query-params")
        steps = b.select_slider("Steps (batches of 1,024 tokens)", STEP_CHOICES, value=DEFAULTS["steps"],
                                key="sae_steps", bind="query-params")
        n_docs = c.select_slider("Corpus (documents)", DOC_CHOICES, value=DEFAULT_DOCS, key="sae_docs",
                                 bind="query-params",
                                 help=f"Generated documents to train on (and a quarter as many held "
                                      f"out). At most {max_tokens(lm):,} activations are kept per "
                                      f"hook on this model ({MAX_FLOATS // 250_000} MB of float32); "
                                      f"a larger corpus adds nothing.")
        seed = d.number_input("Seed", 0, 10_000, 0, key="sae_seed", bind="query-params")
        submitted = st.form_submit_button("Train SAE", type="primary", icon=":material/play_arrow:")
    st.caption(corpus_note(corpus(lm, int(n_docs)), lm.name))
    config = TrainConfig(expansion=int(expansion), architecture=arch, l1_coefficient=float(l1),
                         k=int(k), lr=float(lr), steps=int(steps), batch_size=BATCH, seed=int(seed))
    return Experiment(hook_name, int(n_docs), config), submitted


def is_default(exp: Experiment) -> bool:
    c = exp.config
    return (c.expansion, c.l1_coefficient, c.lr, c.steps, c.architecture, exp.n_docs) == (
        DEFAULTS["expansion"], DEFAULTS["l1"], DEFAULTS["lr"], DEFAULTS["steps"], "relu", DEFAULT_DOCS)
