"""Cached computations behind the Attention page.

Every function takes the model itself (a HookedLM, or an NNsightLM: a model on NDIF or the same
backend run here); the cache is keyed on its spec (ui.common.remote.cache_on_backend). Results that
depend only on the weights (copying scores) are computed once per model and shared by every session;
the prompt's patterns are cached per token sequence, so moving a slider redraws without running the
model again.

Whatever runs the model runs under the session's active interventions (ui.common.interventions):
each such call takes `sig`, their signature, so switching one on or off recomputes it.

A model whose weights are elsewhere sends back what the page draws: the attention patterns (a
prompt's, and those of the random sequences the head types are scored on), each request within
MAX_READ_BYTES, so the prompt and the number of scoring sequences are capped for it (the page says
so). The circuits (W_E, W_V, W_O, W_U, and the pre-softmax scores inside the attention function)
need the weights here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from core.bundled.report import report_heads
from core.interp.attention import patterns as A
from core.interp.attention import weight_circuits as C
from core.interp.attention.head_scores import head_scores
from core.interp.residual.reads import FLOAT_BYTES, MAX_READ_BYTES, has_weights
from core.models import HookedLM
from ui.bundled_model.compute import report
from ui.common.interventions import active_hooks
from ui.common.remote import cache_on_backend

SCORE_SEQS, SCORE_HALF_LEN, SCORE_SEED = 32, 24, 0  # the generated data that classifies heads
# Patterns of every head grow with pos^2 (GPT-2 small at 256 tokens: 38 MB per prompt), so this
# page reads at most MAX_TOKENS and keeps the patterns of a few prompts only.
MAX_TOKENS = 256
DIAGONAL_MAX_VOCAB = 5000  # above this the diagonal measure is computed for the chosen head only


@cache_on_backend(max_entries=4, show_spinner="Running the model...")
def attention_run(lm: HookedLM, tokens: tuple[int, ...], sig: tuple = ()) -> A.AttentionRun:
    with lm.hooks(active_hooks(lm)):
        return A.run_attention(lm, torch.tensor([tokens]))


def pattern_bytes(lm, n_pos: int, n_rows: int = 1) -> int:
    """What the patterns of every head of every layer take for n_rows prompts of n_pos tokens."""
    return n_rows * lm.cfg.n_layers * lm.cfg.n_heads * n_pos * n_pos * FLOAT_BYTES


def max_tokens(lm) -> int:
    """The longest prompt the page reads: MAX_TOKENS, or less where its patterns would exceed
    MAX_READ_BYTES from a model elsewhere."""
    if has_weights(lm):
        return MAX_TOKENS
    return max(2, min(MAX_TOKENS, math.isqrt(MAX_READ_BYTES // pattern_bytes(lm, 1))))


def score_seqs(lm) -> int:
    """Sequences the head types are scored on: SCORE_SEQS, fewer where their patterns would exceed
    MAX_READ_BYTES from a model elsewhere (at least one)."""
    if has_weights(lm):
        return SCORE_SEQS
    n_pos = 1 + 2 * min(SCORE_HALF_LEN, (lm.cfg.n_ctx - 1) // 2)
    return max(1, min(SCORE_SEQS, MAX_READ_BYTES // pattern_bytes(lm, n_pos)))


@cache_on_backend(max_entries=4, show_spinner="Scoring every head on repeated random tokens...")
def score_tables(lm: HookedLM, sig: tuple = ()) -> dict[str, np.ndarray]:
    """kind -> [layer, head] head scores (core.interp.attention.head_scores) as numpy arrays."""
    with lm.hooks(active_hooks(lm)):
        result = head_scores(lm, n=score_seqs(lm), half_len=SCORE_HALF_LEN, seed=SCORE_SEED)
    return {kind: table.numpy() for kind, table in result.scores.items()}


def runs_model(mode: str, sig: tuple) -> tuple:
    """The part of the interventions' signature a circuit in this mode depends on: "in_context" runs
    the model to get each token's stream (so interventions matter); "direct" reads weights only."""
    return sig if mode == "in_context" else ()


@cache_on_backend(max_entries=8, show_spinner="Computing every head's OV copying score...")
def copying_table(lm: HookedLM, mode: str, sig: tuple = ()) -> np.ndarray:
    with lm.hooks(active_hooks(lm) if sig else []):
        return C.copying_scores(lm, mode)


@cache_on_backend(max_entries=8, show_spinner="Ranking every token in its own OV row...")
def diagonal_table(lm: HookedLM, mode: str, sig: tuple = ()) -> dict[str, np.ndarray] | None:
    """Diagonal measure of every head: {"top5": [layer, head], "median_rank": [layer, head]}, or
    None for big vocabularies (then only the chosen head is measured, on a sample)."""
    if lm.cfg.d_vocab > DIAGONAL_MAX_VOCAB:
        return None
    with lm.hooks(active_hooks(lm) if sig else []):
        return {**C.diagonal_copying_all(lm, mode), "n_vocab": len(C.vocab_ids(lm))}


@cache_on_backend(max_entries=64, show_spinner="Ranking tokens in this head's OV row...")
def diagonal_one(lm: HookedLM, layer: int, head: int, mode: str, sig: tuple = ()) -> C.DiagonalCopying:
    with lm.hooks(active_hooks(lm) if sig else []):
        return C.diagonal_copying(lm, layer, head, C.sample_vocab(lm, 300), mode)


@cache_on_backend(max_entries=64, show_spinner=False)
def ov_top(lm: HookedLM, layer: int, head: int, src_ids: tuple[int, ...], mode: str, k: int = 5,
           sig: tuple = ()) -> C.OVTop:
    with lm.hooks(active_hooks(lm) if sig else []):
        return C.ov_top_tokens(lm, layer, head, src_ids, k, mode)


@cache_on_backend(max_entries=64, show_spinner="Measuring the QK positional preference...")
def qk_profile(lm: HookedLM, layer: int, sig: tuple = ()) -> np.ndarray:
    with lm.hooks(active_hooks(lm)):
        return C.qk_distance_profile(lm, layer, n=8, length=64, seed=0)


def bundled_report(lm: HookedLM) -> dict | None:
    """The bundled model's evaluation report (the ground truth), or None for other models."""
    return report() if lm.is_bundled else None


def listed_heads(lm: HookedLM) -> dict[str, list[tuple[int, int, float]]]:
    report = bundled_report(lm)
    return report_heads(report) if report else {}
