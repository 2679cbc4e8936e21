"""Judging a trained SAE on held-out activations: how well it reconstructs, how sparse it is, and
how much of the known truth it found (see sae_features for the ground-truth matching).

Everything is measured on activations the SAE never trained on, from documents it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from core.interp.sae.data import ActivationSet
from core.interp.sae.features import (
    BYTES_PER_ACTIVE,
    CHUNK_FLOATS,
    MAX_ACTIVE,
    ActiveCounter,
    FeatureActs,
    FeatureStats,
    GroundTruthMatch,
    best_attribute,
    chunk_rows,
    feature_stats,
    ground_truth_matches,
    stack,
)
from core.interp.sae.model import SAE
from core.interp.sae.splice import SpliceEvaluator, SpliceLosses
from core.interp.sae.verdict import Findings, findings


@dataclass(frozen=True)
class Reconstruction:
    mse: float  # mean over tokens of |x - x_hat|^2
    explained_variance: float
    l0: float  # mean active features per token
    dead_fraction: float  # features that never fire on these tokens


class _ReconSums:
    """Running sums for Reconstruction over chunks of activations."""

    def __init__(self, d_sae: int):
        self.sq_err, self.l0, self.n = 0.0, 0.0, 0
        self.fired = torch.zeros(d_sae, dtype=torch.bool)

    def add(self, sae: SAE, x: torch.Tensor, f: torch.Tensor) -> None:  # x [chunk, d_in], f [chunk, d_sae]
        self.sq_err += float((sae.decode(f) - x).pow(2).sum())
        active = f > 0
        self.l0 += float(active.sum())
        self.fired |= active.any(0)
        self.n += len(x)

    def result(self, acts: torch.Tensor) -> Reconstruction:
        variance = float((acts.float() - acts.float().mean(0)).pow(2).sum())
        n = max(self.n, 1)
        return Reconstruction(self.sq_err / n, 1 - self.sq_err / max(variance, 1e-12), self.l0 / n,
                              float((~self.fired).float().mean()))


@torch.no_grad()
def reconstruction(sae: SAE, acts: torch.Tensor, chunk: int | None = None) -> Reconstruction:
    """Reconstruction metrics over acts [n, d_in], in chunks."""
    sums = _ReconSums(sae.cfg.d_sae)
    step = chunk or chunk_rows(sae.cfg.d_sae)
    for start in range(0, len(acts), step):
        x = acts[start:start + step].float()  # [chunk, d_in]
        sums.add(sae, x, sae.encode(x))
    return sums.result(acts)


@torch.no_grad()
def encode_heldout(sae: SAE, heldout: ActivationSet, max_active: int = MAX_ACTIVE
                   ) -> tuple[FeatureActs, Reconstruction]:
    """One pass over the held-out activations: the sparse feature activations and the
    reconstruction metrics (each chunk encoded once)."""
    counter = ActiveCounter(sae.cfg.d_sae, len(heldout), max_active)
    sums, blocks = _ReconSums(sae.cfg.d_sae), []
    step = chunk_rows(sae.cfg.d_sae)
    for start in range(0, len(heldout), step):
        x = heldout.acts[start:start + step].float()  # [chunk, d_in]
        f = sae.encode(x)  # [chunk, d_sae]
        counter.add(f)
        sums.add(sae, x, f)
        blocks.append(sparse.csr_matrix(f.numpy()))
    return stack(blocks, heldout.token_ids, sae.cfg.d_sae), sums.result(heldout.acts)


def analysis_bytes(d_in: int, d_sae: int, n_rows: int) -> int:
    """An upper bound on the memory a report on n_rows held-out tokens holds, from the sizes alone:
    the float32 weights, the dense chunks being encoded, and the sparse activations (at most
    MAX_ACTIVE of them; a denser SAE is refused while encoding)."""
    weights = 4 * (2 * d_in * d_sae + d_in + d_sae)
    chunk = 3 * 4 * min(CHUNK_FLOATS, n_rows * d_sae)  # pre-activations, activations, their numpy copy
    return weights + chunk + BYTES_PER_ACTIVE * min(MAX_ACTIVE, n_rows * d_sae)


@dataclass(frozen=True)
class Report:
    """Everything the page shows about one SAE."""

    recon: Reconstruction
    features: FeatureActs
    stats: FeatureStats
    matches: list[GroundTruthMatch]
    feature_labels: list[str]  # per feature: the attribute its tokens mostly belong to, or ""
    feature_match: np.ndarray  # [d_sae] the F1 of "fires" as a detector of that attribute
    splice: SpliceLosses | None

    @property
    def findings(self) -> Findings:
        """The ground-truth verdict (sae.verdict): found, near misses, missed, absent."""
        return findings(self.matches)

    @property
    def n_found(self) -> int:
        return self.findings.n_found

    @property
    def nbytes(self) -> int:
        """What the report holds in memory (mostly the sparse feature activations)."""
        m = self.features.matrix
        return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes + self.features.token_ids.nbytes)


def report(sae: SAE, heldout: ActivationSet, attributes: dict[str, np.ndarray], d_vocab: int, *,
           splice: SpliceEvaluator | None = None) -> Report:
    """Evaluate sae on held-out activations; with a splice evaluator also the spliced losses."""
    F, recon = encode_heldout(sae, heldout)
    labels, match = best_attribute(F, attributes)
    return Report(recon, F, feature_stats(F, d_vocab), ground_truth_matches(F, attributes), labels, match,
                  None if splice is None else splice(sae))
