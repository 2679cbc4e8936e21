"""Cached computations behind the Attention page.

Every function takes the HookedLM itself; @cache_on_model keys the cache on its spec (ui.common.cache).
Results that depend only on the weights (head scores, copying scores) are computed once per model and
shared by every session; the prompt's patterns are cached per token sequence, so moving a slider
redraws without running the model again.
"""

from __future__ import annotations

import numpy as np
import torch

from core.bundled.report import report_heads
from core.interp.attention import patterns as A
from core.interp.attention import weight_circuits as C
from core.interp.attention.head_scores import head_scores
from core.models import HookedLM
from ui.bundled_model.compute import report
from ui.common.cache import cache_on_model

SCORE_SEQS, SCORE_HALF_LEN, SCORE_SEED = 32, 24, 0  # the generated data that classifies heads
# Patterns of every head grow with pos^2 (GPT-2 small at 256 tokens: 38 MB per prompt), so this
# page reads at most MAX_TOKENS and keeps the patterns of a few prompts only.
MAX_TOKENS = 256
DIAGONAL_MAX_VOCAB = 5000  # above this the diagonal measure is computed for the chosen head only


@cache_on_model(max_entries=4, show_spinner="Running the model...")
def attention_run(lm: HookedLM, tokens: tuple[int, ...]) -> A.AttentionRun:
    return A.run_attention(lm, torch.tensor([tokens]))


@cache_on_model(max_entries=4, show_spinner="Scoring every head on repeated random tokens...")
def score_tables(lm: HookedLM) -> dict[str, np.ndarray]:
    """kind -> [layer, head] head scores (core.interp.attention.head_scores) as numpy arrays."""
    result = head_scores(lm, n=SCORE_SEQS, half_len=SCORE_HALF_LEN, seed=SCORE_SEED)
    return {kind: table.numpy() for kind, table in result.scores.items()}


@cache_on_model(max_entries=8, show_spinner="Computing every head's OV copying score...")
def copying_table(lm: HookedLM, mode: str) -> np.ndarray:
    return C.copying_scores(lm, mode)


@cache_on_model(max_entries=8, show_spinner="Ranking every token in its own OV row...")
def diagonal_table(lm: HookedLM, mode: str) -> dict[str, np.ndarray] | None:
    """Diagonal measure of every head: {"top5": [layer, head], "median_rank": [layer, head]}, or
    None for big vocabularies (then only the chosen head is measured, on a sample)."""
    if lm.cfg.d_vocab > DIAGONAL_MAX_VOCAB:
        return None
    return {**C.diagonal_copying_all(lm, mode), "n_vocab": len(C.vocab_ids(lm))}


@cache_on_model(max_entries=64, show_spinner="Ranking tokens in this head's OV row...")
def diagonal_one(lm: HookedLM, layer: int, head: int, mode: str) -> C.DiagonalCopying:
    return C.diagonal_copying(lm, layer, head, C.sample_vocab(lm, 300), mode)


@cache_on_model(max_entries=64, show_spinner=False)
def ov_top(lm: HookedLM, layer: int, head: int, src_ids: tuple[int, ...], mode: str, k: int = 5) -> C.OVTop:
    return C.ov_top_tokens(lm, layer, head, src_ids, k, mode)


@cache_on_model(max_entries=64, show_spinner="Measuring the QK positional preference...")
def qk_profile(lm: HookedLM, layer: int) -> np.ndarray:
    return C.qk_distance_profile(lm, layer, n=8, length=64, seed=0)


def bundled_report(lm: HookedLM) -> dict | None:
    """The bundled model's evaluation report (the ground truth), or None for other models."""
    return report() if lm.is_bundled else None


def listed_heads(lm: HookedLM) -> dict[str, list[tuple[int, int, float]]]:
    report = bundled_report(lm)
    return report_heads(report) if report else {}
