"""A head's two circuits by their singular vectors: what it reads, and what it writes (or attends to).

A head's OV circuit W_OV = W_V @ W_O [d_model, d_model] maps what it reads from a source token to
what it writes; its QK circuit W_QK = W_Q @ W_K^T scores a query against a key. Both have rank at
most d_head, so a singular value decomposition

    W = sum_i s_i u_i v_i^T        (s_1 >= s_2 >= ... ; u_i, v_i unit vectors in d_model)

lists everything the head can do, strongest first: for OV, "reading along u_i writes s_i times v_i";
for QK, "a query along u_i looks for keys along v_i". Projected to tokens, each direction reads like a
sentence: u_i is compared with every token's embedding (through the layer's norm, as the head reads
it: W_E @ u_i), v_i of the OV circuit with the unembedding (W_U, behind the final norm's scale: the
tokens whose logits it raises), v_i of the QK circuit with the embeddings again (the keys). Tokens
are the "stream holds only this token" reading; in later layers the stream holds more.

The sign of a singular pair is arbitrary (u and v can flip together), so each is oriented to make
its strongest output token positive. The spectrum itself says how many things the head does: one
dominant singular value is a head with one job.

Computed from the factors: W_V = Q1 R1 and W_O^T = Q2 R2 (QR), so W_OV = Q1 (R1 R2^T) Q2^T and only
the d_head x d_head core needs an SVD; the same for W_Q, W_K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.interp.neurons.weights import valid_tokens
from core.interp.residual.readout import final_norm, norm_eps
from core.models.norms import normalization_of

KINDS = ("OV", "QK")
ONE_JOB_SHARE = 0.5  # a first direction holding at least this share of the circuit: one job dominates


@dataclass(frozen=True)
class Direction:
    value: float  # the singular value
    in_ids: np.ndarray  # [k] tokens that read most along u (or query along it)
    in_scores: np.ndarray
    out_ids: np.ndarray  # [k] tokens it writes (OV) or looks for as keys (QK)
    out_scores: np.ndarray


@dataclass(frozen=True)
class CircuitSVD:
    kind: str
    layer: int
    head: int
    singular_values: np.ndarray  # [d_head]
    directions: tuple[Direction, ...]

    @property
    def top_share(self) -> float:
        """s_1^2 / sum s_i^2: how much of the circuit its first direction holds."""
        s2 = self.singular_values ** 2
        return float(s2[0] / s2.sum()) if s2.sum() > 0 else float("nan")


def factored_svd(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD of A @ B for A [d, r], B [r, d] without forming it: (U [d, r], S [r], Vh [r, d])."""
    Q1, R1 = torch.linalg.qr(A.double())
    Q2, R2 = torch.linalg.qr(B.double().T)
    Uc, S, Vhc = torch.linalg.svd(R1 @ R2.T)
    return Q1 @ Uc, S, Vhc @ Q2.T


def reading_embeddings(lm, layer: int) -> torch.Tensor:
    """Every token's embedding through layer's attention norm (scale kept, bias dropped): [d_vocab, d]."""
    ln = lm.adapter.block_modules(layer).ln1
    E = lm.W_E.detach().double()
    kind = normalization_of(ln, lm.cfg.normalization)
    if kind == "none":  # a switched-off block norm (core.models.norms): the layer reads E as it is
        return E * ln.weight.detach().double()
    if kind != "rmsnorm":
        E = E - E.mean(-1, keepdim=True)
    return E * torch.rsqrt(E.pow(2).mean(-1, keepdim=True) + norm_eps(ln)) * ln.weight.detach().double()


def _top(scores: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = scores.masked_fill(~valid, -torch.inf)
    v, i = s.topk(k)
    return i.numpy(), v.float().numpy()


def head_svd(lm, layer: int, head: int, kind: str = "OV", n_dirs: int = 4, k: int = 6) -> CircuitSVD:
    """The top n_dirs singular directions of one head's OV or QK circuit, each projected to k tokens."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    w = lm.attention_weights(layer)
    if kind == "OV":
        U, S, Vh = factored_svd(w.W_V[head].detach(), w.W_O[head].detach())
    else:
        U, S, Vh = factored_svd(w.W_Q[head].detach(), w.W_K[head].detach().T)
    E = reading_embeddings(lm, layer)  # [d_vocab, d]
    valid = valid_tokens(lm)
    if kind == "OV":
        fn = final_norm(lm)
        out_side = (lm.W_U.detach().double() * fn.gamma.double()[:, None])  # [d, d_vocab]
        if lm.cfg.normalization != "rmsnorm":
            out_side = out_side - out_side.mean(0, keepdim=True)
    k = min(k, int(valid.sum()))
    dirs = []
    for i in range(min(n_dirs, len(S))):
        u, v = U[:, i], Vh[i]
        out_scores = (v @ out_side) if kind == "OV" else (E @ v)
        if out_scores.masked_fill(~valid, 0).abs().argmax() is not None:
            j = int(out_scores.masked_fill(~valid, 0).abs().argmax())
            if out_scores[j] < 0:  # orient the pair so that its strongest output is positive
                u, v, out_scores = -u, -v, -out_scores
        in_ids, in_vals = _top(E @ u, valid, k)
        out_ids, out_vals = _top(out_scores, valid, k)
        dirs.append(Direction(float(S[i]), in_ids, in_vals, out_ids, out_vals))
    return CircuitSVD(kind, layer, head, S.float().numpy(), tuple(dirs))
