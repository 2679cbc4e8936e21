"""The SAE page's training form and the cached activations it trains on.

Every setting that defines the experiment has a stable key and is bound to the URL, so a link
reproduces the run (after pressing Train). The activations are a pure function of (model, hook,
corpus size) and are cached with st.cache_resource (read-only, tens of megabytes, shared rather
than copied, kept for two hooks at most): retraining with another L1 or k does not rerun the model.
At most MAX_FLOATS numbers are kept per hook, so a large corpus setting reads only the documents
that fit; the cache is keyed on that capped number of documents (the page says so), so settings
above the cap share one entry instead of each rerunning the model for the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.interp.sae.data import ActivationSet, collect_activations, docs_within, split
from core.interp.sae.features import attribute_token_ids
from core.interp.sae.train import TrainConfig
from core.models import act_name
from core.world.datasets import corpus_texts, token_groups

SITES = {"resid_post": "residual stream", "resid_pre": "block input", "mlp_out": "MLP output",
         "attn_out": "attention output"}
EXPANSIONS = [2, 4, 8, 16, 32]
L1_VALUES = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0]
K_VALUES = [1, 2, 4, 8, 16, 24, 32, 48, 64]
LEARNING_RATES = [3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2]
STEP_CHOICES = [100, 200, 300, 500, 800, 1000, 1500, 2000, 3000]
DOC_CHOICES = [500, 1000, 2000, 3000, 5000]
DEFAULT_DOCS = 3000
BATCH = 1024
HELDOUT = 0.2  # share of the documents kept for evaluation and the feature dashboards
MAX_FLOATS = 16_000_000  # activations kept per hook: at most 64 MB of float32


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


def default_layer(n_layers: int) -> int:
    """The middle of the model: resid_post of this layer sits halfway through the blocks."""
    return max(0, n_layers // 2 - 1)


def training_form(lm) -> tuple[Experiment, bool]:
    """The form; returns the experiment it describes and whether Train was pressed."""
    n_layers = lm.cfg.n_layers
    with st.form("sae_form", border=True):
        a, b, c, d = st.columns(4)
        site = a.selectbox("Hook point", list(SITES), format_func=SITES.get, key="sae_site",
                           bind="query-params",
                           help="Residual stream: the output of the block (resid_post). Block input: "
                                "resid_pre. Or what the block's MLP or attention adds to it.")
        layer = b.slider("Layer", 0, n_layers - 1, default_layer(n_layers), key="sae_layer",
                         bind="query-params")
        expansion = c.select_slider("Expansion (d_sae / d_model)", EXPANSIONS, value=4,
                                    format_func=lambda v: f"{v}x", key="sae_expansion",
                                    bind="query-params")
        arch = d.radio("Sparsity by", ["relu", "topk"], horizontal=True, key="sae_arch",
                       format_func={"relu": "ReLU + L1", "topk": "TopK"}.get, bind="query-params")
        a, b, c, d = st.columns(4)
        l1 = a.select_slider("L1 coefficient (ReLU)", L1_VALUES, value=0.5, key="sae_l1",
                             bind="query-params", help="Used by ReLU + L1: larger means sparser.")
        k = b.select_slider("k (TopK)", K_VALUES, value=16, key="sae_k", bind="query-params",
                            help="Used by TopK: active features per token.")
        lr = c.select_slider("Learning rate", LEARNING_RATES, value=3e-3, key="sae_lr",
                             format_func=lambda v: f"{v:g}", bind="query-params")
        steps = d.select_slider("Steps (batches of 1,024 tokens)", STEP_CHOICES, value=800,
                                key="sae_steps", bind="query-params")
        a, b, _ = st.columns([1, 1, 2])
        n_docs = a.select_slider("Corpus (documents)", DOC_CHOICES, value=DEFAULT_DOCS, key="sae_docs",
                                 bind="query-params",
                                 help=f"Generated documents to train on (and a quarter as many held "
                                      f"out). At most {max_tokens(lm):,} activations are kept per "
                                      f"hook on this model ({MAX_FLOATS // 250_000} MB of float32); "
                                      f"a larger corpus adds nothing.")
        seed = b.number_input("Seed", 0, 10_000, 0, key="sae_seed", bind="query-params")
        submitted = st.form_submit_button("Train SAE", type="primary", icon=":material/play_arrow:")
    st.caption(corpus_note(corpus(lm, lm.spec, int(n_docs)), lm.name))
    config = TrainConfig(expansion=int(expansion), architecture=arch, l1_coefficient=float(l1),
                         k=int(k), lr=float(lr), steps=int(steps), batch_size=BATCH, seed=int(seed))
    return Experiment(act_name(site, layer), int(n_docs), config), submitted


READING = "Running the model over the corpus to read activations (once per hook and corpus size)..."


def max_tokens(lm) -> int:
    """Activations kept per hook: MAX_FLOATS numbers of width d_model."""
    return MAX_FLOATS // lm.cfg.d_model


@dataclass(frozen=True)
class Corpus:
    """What a corpus setting of n_docs training documents really reads on one model."""

    requested: int  # generated documents asked for (training + held-out)
    n_texts: int  # of them, the leading ones read: all, or as many as fill the cap
    n_tokens: int  # activations they give (BOS left out), at most max_tokens
    max_tokens: int

    @property
    def capped(self) -> bool:
        return self.n_texts < self.requested or self.n_tokens >= self.max_tokens


@st.cache_data(max_entries=16, show_spinner=False)
def corpus(_lm, spec: str, n_docs: int) -> Corpus:
    """Tokenize (no model run) the corpus for n_docs training documents, and cap it."""
    requested = int(n_docs / (1 - HELDOUT))
    cap = max_tokens(_lm)
    _, lengths = _lm.tokenize_batch(corpus_texts(requested, seed=0))  # cut to n_ctx
    n_texts = docs_within(lengths, cap)
    n_tokens = min(cap, int((lengths[:n_texts] - 1).clamp(min=0).sum()))
    return Corpus(requested, n_texts, n_tokens, cap)


def corpus_note(c: Corpus, model_name: str) -> str:
    """The caption under the form: what the corpus setting reads, and the cap."""
    split_note = f"{1 - HELDOUT:.0%} to train, {HELDOUT:.0%} held out"
    if not c.capped:
        return (f"Corpus: {c.n_texts:,} generated documents, {c.n_tokens:,} tokens ({split_note}). "
                f"At most {c.max_tokens:,} activations are kept per hook on {model_name}.")
    return (f"Corpus capped at {c.max_tokens:,} activations per hook on {model_name} "
            f"({MAX_FLOATS // 250_000} MB of float32): the SAE reads the first {c.n_texts:,} of "
            f"{c.requested:,} generated documents ({split_note}), so corpus settings above about "
            f"{int(c.n_texts * (1 - HELDOUT)):,} documents all read the same data.")


def activations(lm, spec: str, hook_name: str, n_docs: int) -> tuple[ActivationSet, ActivationSet]:
    """(train, heldout) activations at hook_name for a corpus setting of n_docs documents, from
    the cache entry of the documents actually read (see corpus)."""
    return read_activations(lm, spec, hook_name, corpus(lm, spec, n_docs).n_texts)


@st.cache_resource(max_entries=2, show_spinner=False)
def read_activations(_lm, spec: str, hook_name: str, n_texts: int
                     ) -> tuple[ActivationSet, ActivationSet]:
    """(train, heldout) activations at hook_name over the first n_texts generated documents.

    A resource, not data: tens of megabytes that every rerun reads and nobody changes, so they are
    shared rather than copied out of the cache each time."""
    texts = corpus_texts(n_texts, seed=0)
    data = collect_activations(_lm, texts, hook_name, max_tokens=max_tokens(_lm))
    return split(data, 1 - HELDOUT)


def answer_key(lm) -> pd.DataFrame:
    """The known attributes, a few of their words, and how many are single tokens for lm."""
    ids = attributes(lm, lm.spec)
    return pd.DataFrame([{"attribute": name, "words": ", ".join(w.strip() for w in words[:6]) + ", ...",
                          "tokens": len(ids[name])} for name, words in token_groups().items()])


@st.cache_data(max_entries=4, show_spinner=False)
def attributes(_lm, spec: str) -> dict:
    """The bundled world's known attributes as token ids of this model's tokenizer."""
    return attribute_token_ids(_lm, token_groups())


@st.cache_data(max_entries=4, show_spinner=False)
def splice_batch(_lm, spec: str, n: int = 48):
    """Held-out documents for the spliced cross-entropy (tokens, lengths)."""
    tokens, lengths = _lm.tokenize_batch(corpus_texts(n, seed=12345))
    n_ctx = _lm.cfg.n_ctx
    return tokens[:, :n_ctx], lengths.clamp(max=n_ctx)


@st.cache_data(max_entries=4, show_spinner=False)
def vocab_strings(_lm, spec: str) -> list[str]:
    """Every token id of the model as its text (" Mary"), for showing contexts."""
    return _lm.to_str_tokens(list(range(_lm.cfg.d_vocab)))
