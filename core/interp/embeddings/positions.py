"""Where positions live: how a transformer knows the order of its tokens.

Attention by itself is blind to order: it compares every query with every key the same way wherever
they sit. Order has to be put in, and models do it in one of three ways.

- Learned position embeddings (GPT-2, GPT-Neo, the bundled model): a second table W_pos
  [n_ctx, d_model]; position p adds the row W_pos[p] to the token's embedding. Nothing says what the
  rows should look like; training shapes them. Their cosine-similarity matrix shows the shape they
  took: a bright band along the diagonal means nearby positions got similar vectors, so the model
  can tell "near" from "far". The top principal components often trace smooth waves over the
  positions, like the sinusoids below, found by gradient descent.
- Sinusoidal encodings (Vaswani et al., 2017, "Attention is all you need"), computed from a formula:
      PE[p, 2i] = sin(p / base^(2i / d)),    PE[p, 2i + 1] = cos(p / base^(2i / d)),  base = 10000.
  Each pair of dimensions is a clock turning at its own speed, from one turn every 2*pi positions to
  one every 2*pi*base. The dot product PE[p] . PE[p + k] depends only on the distance k, never on p.
- Rotary embeddings (RoPE; Su et al., 2021, "RoFormer"; Pythia, Llama, SmolLM): no table is added.
  Inside attention, each pair of query and key dimensions is rotated by the angle p * theta_i, with
  theta_i = base^(-2i / d_rot). A rotation by p on the query and q on the key leaves their dot
  product depending only on p - q, so the attention score sees relative position directly. For a
  query equal to its key the score is sum_i cos(theta_i * k): it starts at its maximum at distance
  0 and, as the fast pairs fall out of step, decays with oscillations (RoFormer's "long-term
  decay"). Some models rotate only part of each head (Pythia: a quarter of the dimensions); the rest
  carries no position at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def cosine_matrix(W: np.ndarray) -> np.ndarray:
    """Cosine similarity between every pair of rows of W [n, d] -> [n, n]."""
    W = np.asarray(W, dtype=np.float64)
    U = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    return U @ U.T


def cosine_by_distance(W: np.ndarray) -> np.ndarray:
    """Mean cosine similarity between rows k apart, for k = 0 .. n - 1: [n]."""
    cos = cosine_matrix(W)
    return np.array([np.diagonal(cos, offset=k).mean() for k in range(len(cos))])


@dataclass(frozen=True)
class PositionPCs:
    components: np.ndarray  # [n_pos, k]: each position's coordinate on the top k principal axes
    explained: tuple[float, ...]  # share of the variance of the rows on each axis


def position_pcs(W_pos: np.ndarray, k: int = 3) -> PositionPCs:
    """Project the rows of W_pos [n_pos, d_model] on their top k principal components (via SVD)."""
    W = np.asarray(W_pos, dtype=np.float64)
    centred = W - W.mean(axis=0)
    U, S, _ = np.linalg.svd(centred, full_matrices=False)  # centred = U diag(S) V^T
    k = min(k, len(S))
    var = S**2
    return PositionPCs(U[:, :k] * S[:k], tuple(float(v) for v in var[:k] / var.sum()))


def sinusoidal(n_pos: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """The sinusoidal encodings of Vaswani et al. (2017): [n_pos, d_model]."""
    pos = np.arange(n_pos, dtype=np.float64)[:, None]  # [n_pos, 1]
    i = np.arange(0, d_model, 2, dtype=np.float64)  # [d_model / 2]: the even dimensions 2i
    angle = pos / base ** (i / d_model)  # [n_pos, d_model / 2]
    pe = np.zeros((n_pos, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return pe


def rotary_frequencies(model: torch.nn.Module) -> np.ndarray | None:
    """theta_i (radians per position) of a rotary model's pairs, fastest first; None if it has none.

    Read from the model's own `inv_freq` buffer, so partial rotary and scaled variants show what the
    checkpoint actually uses."""
    for name, buf in model.named_buffers():
        if name.endswith("inv_freq") and not name.endswith("original_inv_freq"):
            return buf.detach().double().cpu().numpy()
    return None


def rotary_score_by_distance(theta: np.ndarray, max_distance: int) -> np.ndarray:
    """q . k / |q|^2 for a query equal to its key, k positions apart: mean_i cos(theta_i k)."""
    k = np.arange(max_distance + 1, dtype=np.float64)[:, None]  # [distance, 1]
    return np.cos(k * np.asarray(theta, dtype=np.float64)[None, :]).mean(axis=1)


def wavelengths(theta: np.ndarray) -> np.ndarray:
    """Positions per full turn of each rotary pair (or sinusoid pair): 2 pi / theta_i."""
    return 2 * np.pi / np.asarray(theta, dtype=np.float64)


def sinusoidal_frequencies(d_model: int, base: float = 10000.0) -> np.ndarray:
    """theta_i = base^(-2i / d_model) of the sinusoidal encodings, one per pair of dimensions."""
    return base ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)


def shown_positions(n_ctx: int, limit: int = 128) -> np.ndarray:
    """Evenly spaced positions (at most `limit`) to draw a [n_ctx, n_ctx] matrix without freezing."""
    step = max(1, int(np.ceil(n_ctx / limit)))
    return np.arange(0, n_ctx, step)
