"""Direct logit attribution: split the model's answer into what each component wrote.

The final residual stream is a sum: the embeddings, plus every attention head's output, plus every
attention layer's output bias, plus every MLP's output (the attention's write is the sum of its
heads, z_h @ W_O[h], plus b_O). The logits are a readout of that sum, and the readout is linear once
the final norm's scale s is frozen at its real value (core.interp.residual.readout). So for two
answer tokens a and b (" Mary" vs " John"), with d = W_U[:, a] - W_U[:, b]:

    logit_a - logit_b = sum over parts of (gamma * centre(part) / s) . d
                        + beta . d + (b_U[a] - b_U[b])          # the final norm's and unembedding's biases

Every term is one component's *direct* effect: what it adds to the logit difference through the
stream straight to the output, not through later layers (a head whose output only steers a later
head gets little direct credit; that is what patching measures). The parts sum to the model's own
logit difference; the page shows the sum next to the total and the test checks it to 1e-4.

Accumulated residual: the same readout applied to the stream after each layer (with the same frozen
scale) says how much of the logit difference is in the stream at that point; at the last point it is
the total.

With interventions active (a steering vector, an ablation), the stream holds what the hooks added
too: that appears as its own part, "added by interventions", so the sum stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.residual.readout import final_norm, unembed_bias
from core.models import act_name
from core.models.hook_names import stream_hook, stream_layers

KINDS = ("embed", "pos_embed", "head", "attn_bias", "mlp", "hooks", "final_bias")


@dataclass(frozen=True)
class DLAResult:
    """Direct logit attribution of logit(answer) - logit(other), averaged over n prompts."""

    answer: str  # e.g. " Mary", or "IO name" for a set of prompts
    other: str
    labels: tuple[str, ...]  # one per part, e.g. "head 3.1", "MLP 2", "embeddings"
    kinds: tuple[str, ...]  # one of KINDS per part
    layers: tuple[int | None, ...]
    heads: tuple[int | None, ...]
    values: np.ndarray  # [part] contribution to the logit difference
    total: float  # the model's own logit difference (mean over prompts)
    head_table: np.ndarray  # [layer, head]
    accumulated: np.ndarray  # [stream point] logit difference read from the stream there
    accumulated_layers: tuple[int, ...]
    n_prompts: int

    @property
    def sum_of_parts(self) -> float:
        return float(self.values.sum())

    @property
    def error(self) -> float:
        """|sum of parts - the model's logit difference|: rounding only (tested below 1e-4)."""
        return abs(self.sum_of_parts - self.total)

    def of_kind(self, kind: str) -> float:
        return float(sum(v for v, k in zip(self.values, self.kinds, strict=True) if k == kind))


def _gather(t: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """t [batch, pos, ...] at each row's position -> [batch, ...] in float64."""
    return t[torch.arange(t.shape[0]), positions].double()


def direct_logit_attribution(lm, tokens: torch.Tensor, positions: Sequence[int] | torch.Tensor,
                             answer_ids: Sequence[int] | torch.Tensor,
                             other_ids: Sequence[int] | torch.Tensor, *, answer: str = "",
                             other: str = "", hooks: Sequence = ()) -> DLAResult:
    """DLA at positions [batch] of tokens [batch, pos] for logit(answer_ids) - logit(other_ids)
    (one id per row), under `hooks` (the learner's active interventions)."""
    cfg = lm.cfg
    positions = torch.as_tensor(list(positions) if not torch.is_tensor(positions) else positions)
    a_ids = torch.as_tensor(list(answer_ids) if not torch.is_tensor(answer_ids) else answer_ids)
    b_ids = torch.as_tensor(list(other_ids) if not torch.is_tensor(other_ids) else other_ids)
    has_pos = lm.W_pos is not None
    points = stream_layers(cfg.n_layers)
    names = ["hook_embed"] + (["hook_pos_embed"] if has_pos else [])
    names += [act_name("z", L) for L in range(cfg.n_layers)]
    names += [act_name("mlp_out", L) for L in range(cfg.n_layers)]
    names += [stream_hook(p) for p in points]
    with lm.hooks(list(hooks)), torch.no_grad():
        logits, cache = lm.run_with_cache(tokens, names=names)
    rows = torch.arange(tokens.shape[0])
    last = _gather(logits, positions)  # [batch, d_vocab]
    total = last[rows, a_ids] - last[rows, b_ids]  # [batch]

    fn = final_norm(lm)
    final = _gather(cache[stream_hook(points[-1])], positions)  # [batch, d_model]
    scale = fn.scale(final)  # [batch, 1], frozen
    W_U = lm.W_U.detach().double()  # [d_model, d_vocab]
    direction = (W_U[:, a_ids] - W_U[:, b_ids]).T * fn.gamma.double()  # [batch, d_model]

    def read(x: torch.Tensor) -> torch.Tensor:  # x [batch, ..., d_model] -> [batch, ...]
        d = direction.view(direction.shape[0], *([1] * (x.dim() - 2)), -1)
        return (fn.centre(x) / scale.view(-1, *([1] * (x.dim() - 1))) * d).sum(-1)

    labels, kinds, layers, heads, values = [], [], [], [], []
    written = torch.zeros_like(final)

    def add(label, kind, layer, head, vec):  # vec [batch, d_model]
        nonlocal written
        written = written + vec
        labels.append(label), kinds.append(kind), layers.append(layer), heads.append(head)
        values.append(read(vec))

    add("token embeddings", "embed", None, None, _gather(cache["hook_embed"], positions))
    if has_pos:
        add("position embeddings", "pos_embed", None, None, _gather(cache["hook_pos_embed"], positions))
    head_table = np.zeros((cfg.n_layers, cfg.n_heads))
    for L in range(cfg.n_layers):
        w = lm.attention_weights(L)
        z = _gather(cache[act_name("z", L)], positions)  # [batch, head, d_head]
        out = torch.einsum("bhd,hdm->bhm", z, w.W_O.detach().double())  # [batch, head, d_model]
        for h in range(cfg.n_heads):
            add(f"head {L}.{h}", "head", L, h, out[:, h])
            head_table[L, h] = float(values[-1].mean())
        if w.b_O is not None:
            bias = w.b_O.detach().double().expand_as(final)
            add(f"attention bias {L}", "attn_bias", L, None, bias)
        add(f"MLP {L}", "mlp", L, None, _gather(cache[act_name("mlp_out", L)], positions))
    if hooks:  # what the hooks added straight to the stream (steering vectors, patches)
        add("added by interventions", "hooks", None, None, final - written)
    bias = torch.zeros(len(rows), dtype=torch.float64)
    if fn.beta is not None:
        bias = bias + (direction / fn.gamma.double() * fn.beta.double()).sum(-1)
    b_U = unembed_bias(lm)
    if b_U is not None:
        bias = bias + (b_U.double()[a_ids] - b_U.double()[b_ids])
    labels.append("final norm and unembedding biases"), kinds.append("final_bias")
    layers.append(None), heads.append(None), values.append(bias)

    accumulated = np.array([float((read(_gather(cache[stream_hook(p)], positions)) + bias).mean())
                            for p in points])
    vals = np.array([float(v.mean()) for v in values])
    return DLAResult(answer, other, tuple(labels), tuple(kinds), tuple(layers), tuple(heads), vals,
                     float(total.mean()), head_table, accumulated, tuple(points), int(len(rows)))
