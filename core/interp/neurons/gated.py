"""Gated MLPs (Llama, SmolLM): a neuron is a product, gate times up, so it has four sign quadrants.

    post = act(gate) * up        gate = norm2(x) @ W_gate[:, n],  up = norm2(x) @ W_up[:, n]

With SiLU, act(gate) is large only for positive gate values (and slightly negative for negative
ones), while up can be either sign. So the same neuron writes +W_out[n] on some tokens and -W_out[n]
on others: reading only "when does it fire" misses half of it. The four quadrants (gate > 0 or not,
up > 0 or not) say where its output comes from: the share of tokens in each and the mean
activation there. The product is checked against the model's own mlp.hook_post.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.interp.neurons.weights import activation_fn, mlp_modules, mlp_weights
from core.models import act_name

QUADRANTS = ("gate + / up +", "gate + / up -", "gate - / up +", "gate - / up -")


@dataclass(frozen=True)
class GateUp:
    layer: int
    neuron: int
    gate: np.ndarray  # [n_tokens] the gate projection (before the activation)
    up: np.ndarray  # [n_tokens]
    post: np.ndarray  # [n_tokens] act(gate) * up, as the model computed it
    share: np.ndarray  # [4] share of tokens per quadrant (QUADRANTS order)
    mean_post: np.ndarray  # [4] mean activation per quadrant (NaN where empty)
    max_error: float  # |act(gate) * up - hook_post|, the check


def gate_up(lm, layer: int, neuron: int, rows: torch.Tensor, lengths: torch.Tensor, hooks=()) -> GateUp:
    """Gate and up of one neuron at every real token (BOS left out) of rows [n, pos]."""
    mods = mlp_modules(lm, layer)
    if "gate" not in mods:
        raise ValueError("This model's MLP is not gated: it has one input projection per neuron.")
    w = mlp_weights(lm, layer)
    names = [act_name("resid_mid", layer) if lm.cfg.has_resid_mid else act_name("resid_pre", layer),
             act_name("post", layer)]
    with lm.hooks(list(hooks)), torch.no_grad():
        _, cache = lm.run_with_cache(rows, names=names, stop_at_layer=layer + 1)
        x = mods["norm"](cache[names[0]]).float()  # [n, pos, d_model]: what the MLP reads
    real = torch.arange(rows.shape[1])[None, :] < lengths[:, None]
    real[:, 0] = False
    x = x[real]  # [n_tokens, d_model]
    gate = x @ w.W_gate[:, neuron].float() + (w.b_gate[neuron].float() if w.b_gate is not None else 0.0)
    up = x @ w.W_in[:, neuron].float() + (w.b_in[neuron].float() if w.b_in is not None else 0.0)
    with torch.no_grad():
        post_check = activation_fn(lm, layer)(gate) * up
    post = cache[names[1]][real][:, neuron].float()
    g, u, p = gate.numpy(), up.numpy(), post.numpy()
    masks = [(g > 0) & (u > 0), (g > 0) & (u <= 0), (g <= 0) & (u > 0), (g <= 0) & (u <= 0)]
    share = np.array([m.mean() for m in masks])
    mean = np.array([p[m].mean() if m.any() else np.nan for m in masks])
    return GateUp(layer, neuron, g, u, p, share, mean, float((post_check - post).abs().max()))
