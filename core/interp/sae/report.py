"""Judging a trained SAE on held-out activations: how well it reconstructs, how sparse it is, and
how much of the known truth it found (see sae_features for the ground-truth matching).

Everything is measured on activations the SAE never trained on, from documents it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.interp.sae.data import ActivationSet
from core.interp.sae.features import (
    FeatureActs,
    FeatureStats,
    GroundTruthMatch,
    best_attribute,
    feature_acts,
    feature_stats,
    ground_truth_matches,
)
from core.interp.sae.model import SAE
from core.interp.sae.splice import SpliceLosses, splice_losses


@dataclass(frozen=True)
class Reconstruction:
    mse: float  # mean over tokens of |x - x_hat|^2
    explained_variance: float
    l0: float  # mean active features per token
    dead_fraction: float  # features that never fire on these tokens


@torch.no_grad()
def reconstruction(sae: SAE, acts: torch.Tensor, chunk: int = 8192) -> Reconstruction:
    """Reconstruction metrics over acts [n, d_in], in chunks."""
    sq_err, l0, n = 0.0, 0.0, len(acts)
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    for start in range(0, n, chunk):
        x = acts[start:start + chunk].float()  # [chunk, d_in]
        f = sae.encode(x)
        sq_err += float((sae.decode(f) - x).pow(2).sum())
        active = f > 0
        l0 += float(active.sum())
        fired |= active.any(0)
    variance = float((acts.float() - acts.float().mean(0)).pow(2).sum())
    return Reconstruction(sq_err / n, 1 - sq_err / max(variance, 1e-12), l0 / n,
                          float((~fired).float().mean()))


@dataclass(frozen=True)
class Report:
    """Everything the page shows about one SAE."""

    recon: Reconstruction
    features: FeatureActs
    stats: FeatureStats
    matches: list[GroundTruthMatch]
    feature_labels: list[str]  # per feature: the attribute its tokens mostly belong to, or ""
    feature_match: np.ndarray  # [d_sae] the "fires or not" AUROC for that attribute
    splice: SpliceLosses | None

    @property
    def n_found(self) -> int:
        return sum(m.found for m in self.matches)


def report(sae: SAE, heldout: ActivationSet, attributes: dict[str, np.ndarray], d_vocab: int, *,
           lm=None, splice_tokens: tuple[torch.Tensor, torch.Tensor] | None = None,
           threshold: float = 0.9) -> Report:
    """Evaluate sae on held-out activations; with lm and splice_tokens also the spliced losses."""
    F = feature_acts(sae, heldout.acts, heldout.token_ids)
    labels, match = best_attribute(F, attributes)
    splice = None
    if lm is not None and splice_tokens is not None:
        splice = splice_losses(lm, sae, *splice_tokens)
    return Report(reconstruction(sae, heldout.acts), F, feature_stats(F, d_vocab),
                  ground_truth_matches(F, attributes, threshold=threshold), labels, match, splice)
