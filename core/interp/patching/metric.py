"""The metric: how strongly the model prefers the right answer over the wrong one.

    logit_diff = logits[last, right] - logits[last, wrong]
               = ln_final(resid_final[last]) . (W_U[:, right] - W_U[:, wrong])  (+ the bias difference)

Only two columns of the unembedding are needed, so a patched run never computes the other d_vocab
logits. The logit difference is a direct, linear read-out of the final residual stream, unlike the
probability, which saturates (Wang et al., 2022; Zhang and Nanda, 2024, on choosing the metric).

Normalised, the clean run scores 1 and the corrupted run 0:

    normalised = (patched - corrupt) / (clean - corrupt)

Denoising (corrupted run, one activation from the clean run): 1 means that activation alone brings
the whole behaviour back. Noising (clean run, one activation from the corrupted run): 0 means that
activation alone destroys it. When clean and corrupted barely differ, the ratio is noise: see
MIN_GAP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MIN_GAP = 0.5  # logits: a pair whose clean and corrupted logit differences are closer says too little


def answer_directions(lm, answers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: W_U[:, right] - W_U[:, wrong] [batch, d_model] and the bias difference [batch]."""
    W_U = lm.W_U.detach()  # [d_model, d_vocab]
    u = (W_U[:, answers[:, 0]] - W_U[:, answers[:, 1]]).T.contiguous()  # [batch, d_model]
    bias = lm.model.get_output_embeddings().bias
    b = torch.zeros(len(answers)) if bias is None else (bias[answers[:, 0]] - bias[answers[:, 1]]).detach()
    return u.float(), b.float()


def logit_diff(normalized_last: torch.Tensor, u: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """normalized_last [rows, d_model] (after the final norm, last position) . u [rows, d_model] + b."""
    return (normalized_last.float() * u).sum(-1) + b


@dataclass(frozen=True)
class Baseline:
    """Mean logit differences of the clean and corrupted runs over the batch, and per row."""

    clean: float
    corrupt: float
    clean_rows: np.ndarray  # [batch]
    corrupt_rows: np.ndarray

    @property
    def gap(self) -> float:
        return self.clean - self.corrupt

    @property
    def usable(self) -> bool:
        """Is the gap wide enough for normalised numbers to mean something?"""
        return abs(self.gap) >= MIN_GAP

    def normalise(self, values):
        """(values - corrupt) / (clean - corrupt); NaN where the gap is zero."""
        values = np.asarray(values, dtype=float)
        if self.gap == 0:
            return np.full_like(values, np.nan)
        return (values - self.corrupt) / self.gap
