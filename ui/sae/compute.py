"""The SAE page's cached calls into core: the corpus, the activations it trains on, the answer key,
the spliced-loss batch, and the report on one SAE.

The activations are a pure function of (model, hook, corpus size) and are cached with
st.cache_resource (read-only, tens of megabytes, shared rather than copied, kept for two hooks at
most): retraining with another L1 or k does not rerun the model. At most MAX_FLOATS numbers are
kept per hook, so a large corpus setting reads only the documents that fit; the cache is keyed on
that capped number of documents (the page says so), so settings above the cap share one entry
instead of each rerunning the model for the same data. Calls are keyed on the model's spec
(ui.common.cache), never on its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.interp.sae.data import ActivationSet, collect_activations, docs_within, split
from core.interp.sae.features import attribute_token_ids
from core.interp.sae.model import SAE
from core.interp.sae.report import Report, report
from core.interp.sae.splice import SpliceEvaluator
from core.models import HookedLM
from core.world.datasets import corpus_texts, token_groups
from ui.common.cache import cache_on_model, resource_on_model

DOC_CHOICES = [500, 1000, 2000, 3000, 5000]
DEFAULT_DOCS = 3000
HELDOUT = 0.2  # share of the documents kept for evaluation and the feature dashboards
MAX_FLOATS = 16_000_000  # activations kept per hook: at most 64 MB of float32
SPLICE_DOCS = 48  # held-out documents the spliced cross-entropy is measured on
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


@cache_on_model(max_entries=16, show_spinner=False)
def corpus(lm: HookedLM, n_docs: int) -> Corpus:
    """Tokenize (no model run) the corpus for n_docs training documents, and cap it."""
    requested = int(n_docs / (1 - HELDOUT))
    cap = max_tokens(lm)
    _, lengths = lm.tokenize_batch(corpus_texts(requested, seed=0))  # cut to n_ctx
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


def activations(lm: HookedLM, hook_name: str, n_docs: int) -> tuple[ActivationSet, ActivationSet]:
    """(train, heldout) activations at hook_name for a corpus setting of n_docs documents, from
    the cache entry of the documents actually read (see corpus)."""
    return read_activations(lm, hook_name, corpus(lm, n_docs).n_texts)


@resource_on_model(max_entries=2, show_spinner=False)
def read_activations(lm: HookedLM, hook_name: str, n_texts: int) -> tuple[ActivationSet, ActivationSet]:
    """(train, heldout) activations at hook_name over the first n_texts generated documents.

    A resource, not data: tens of megabytes that every rerun reads and nobody changes, so they are
    shared rather than copied out of the cache each time."""
    texts = corpus_texts(n_texts, seed=0)
    data = collect_activations(lm, texts, hook_name, max_tokens=max_tokens(lm))
    return split(data, 1 - HELDOUT)


def n_heldout(lm: HookedLM, n_docs: int) -> int:
    """About how many held-out activations a report reads (for the memory budget, before reading)."""
    return int(HELDOUT * corpus(lm, n_docs).n_tokens) + 1


@cache_on_model(max_entries=4, show_spinner=False)
def attributes(lm: HookedLM) -> dict:
    """The bundled world's known attributes as token ids of this model's tokenizer."""
    return attribute_token_ids(lm, token_groups())


def answer_key(lm: HookedLM) -> pd.DataFrame:
    """The known attributes, a few of their words, and how many are single tokens for lm."""
    ids = attributes(lm)
    return pd.DataFrame([{"attribute": name, "words": ", ".join(w.strip() for w in words[:8]) + ", ...",
                          "single tokens": len(ids[name])} for name, words in token_groups().items()])


@cache_on_model(max_entries=4, show_spinner=False)
def splice_batch(lm: HookedLM, n: int = SPLICE_DOCS):
    """Held-out documents for the spliced cross-entropy (tokens, lengths)."""
    tokens, lengths = lm.tokenize_batch(corpus_texts(n, seed=12345))
    n_ctx = lm.cfg.n_ctx
    return tokens[:, :n_ctx], lengths.clamp(max=n_ctx)


@cache_on_model(max_entries=8, show_spinner=False)
def splice_baseline(lm: HookedLM, hook_name: str) -> tuple[float, float]:
    """(clean, zero-ablated) cross-entropy on the splice batch: the same for every SAE at a hook."""
    return SpliceEvaluator(lm, hook_name, *splice_batch(lm)).baseline()


def evaluator(lm: HookedLM, hook_name: str) -> SpliceEvaluator:
    """Spliced losses at hook_name, one forward pass per SAE."""
    return SpliceEvaluator(lm, hook_name, *splice_batch(lm), baseline=splice_baseline(lm, hook_name))


@cache_on_model(max_entries=4, show_spinner=False)
def vocab_strings(lm: HookedLM) -> list[str]:
    """Every token id of the model as its text (" Mary"), for showing contexts."""
    return lm.to_str_tokens(list(range(lm.cfg.d_vocab)))


def analyse(lm: HookedLM, sae: SAE, n_docs: int) -> Report:
    """The report on one SAE: held-out reconstruction, the ground truth, the spliced losses."""
    _, heldout = activations(lm, sae.cfg.hook_name, n_docs)
    return report(sae, heldout, attributes(lm), lm.cfg.d_vocab, splice=evaluator(lm, sae.cfg.hook_name))
