"""A neuron's weights, read as tokens: what it reads from the stream, and what it writes to it.

An MLP neuron n of layer L computes, for the stream x at one position,

    pre_n  = norm2(x) @ W_in[:, n] + b_in[n]          # how much x points along its input direction
    post_n = act(pre_n)                               # GELU, ReLU, ...
    write  = post_n * W_out[n]                        # added to the stream: [d_model]

Gated MLPs (Llama, SmolLM) have two input directions: a gate and an "up" projection,

    post_n = act(norm2(x) @ W_gate[:, n]) * (norm2(x) @ W_up[:, n])

so the neuron's output can be negative as often as positive: the sign of the up projection flips it.

Reading the weights as tokens (no input needed):
- What it writes: W_out[n] through the final norm's scale and the unembedding, W_out[n] @ W_U: the
  tokens whose logits it raises (and lowers) when it fires, as a direct effect.
- What it reads: every token's embedding through this layer's norm, times W_in[:, n]: the tokens
  that would drive it if the stream held nothing but the token itself (W_E @ W_in). In a deep
  layer the stream holds much more than the current token, so this is a first guess, not the truth.

Weight layouts differ per family (GPT-2's Conv1D stores [in, out]; torch's Linear stores
[out, in]); `mlp_weights` returns them the TransformerLens way: W_in [d_model, d_mlp],
W_out [d_mlp, d_model].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.interp.residual.readout import final_norm, norm_eps
from core.models.norms import normalization_of


@dataclass(frozen=True)
class MLPWeights:
    W_in: torch.Tensor  # [d_model, d_mlp]: the "up" projection on gated MLPs
    b_in: torch.Tensor | None  # [d_mlp]
    W_gate: torch.Tensor | None  # [d_model, d_mlp] (gated MLPs only)
    b_gate: torch.Tensor | None
    W_out: torch.Tensor  # [d_mlp, d_model]
    b_out: torch.Tensor | None  # [d_model]

    @property
    def gated(self) -> bool:
        return self.W_gate is not None


def _in_out(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A projection's weight as [in, out] and its bias (Conv1D stores [in, out], Linear [out, in])."""
    weight = module.weight.detach()
    if not isinstance(module, nn.Linear):  # transformers' Conv1D: y = x @ W + b
        return weight, getattr(module, "bias", None)
    bias = module.bias.detach() if module.bias is not None else None
    return weight.T, bias


def mlp_modules(lm, layer: int) -> dict[str, nn.Module]:
    """{"in": ..., "gate": ... or absent, "out": ..., "norm": the norm before the MLP, "mlp": ...}."""
    m = lm.adapter.block_modules(layer)
    gated = hasattr(m.mlp, "up_proj") and hasattr(m.mlp, "gate_proj")
    out = {"out": m.mlp_out, "norm": m.ln2, "mlp": m.mlp}
    if gated:
        out.update({"in": m.mlp.up_proj, "gate": m.mlp.gate_proj})
    else:
        out["in"] = m.mlp_in
    return out


def mlp_weights(lm, layer: int) -> MLPWeights:
    mods = mlp_modules(lm, layer)
    W_in, b_in = _in_out(mods["in"])
    W_gate, b_gate = _in_out(mods["gate"]) if "gate" in mods else (None, None)
    W_out, b_out = _in_out(mods["out"])
    detach = lambda t: None if t is None else t.detach()  # noqa: E731
    return MLPWeights(W_in, detach(b_in), W_gate, detach(b_gate), W_out, detach(b_out))


def activation_fn(lm, layer: int):
    """The MLP's nonlinearity as a callable (GELU, SiLU, ...)."""
    mlp = mlp_modules(lm, layer)["mlp"]
    for attr in ("act_fn", "act"):
        if hasattr(mlp, attr):
            return getattr(mlp, attr)
    raise ValueError(f"Cannot find the activation function of layer {layer}'s MLP")


def normed_embeddings(lm, layer: int) -> torch.Tensor:
    """Every token's embedding through layer's MLP norm (learned scale and bias kept): [d_vocab, d_model]."""
    norm = mlp_modules(lm, layer)["norm"]
    E = lm.W_E.detach().float()
    kind = normalization_of(norm, lm.cfg.normalization)
    if kind == "none":  # a switched-off block norm (core.models.norms)
        x = E
    elif kind == "rmsnorm":
        x = E * torch.rsqrt(E.pow(2).mean(-1, keepdim=True) + norm_eps(norm))
    else:
        c = E - E.mean(-1, keepdim=True)
        x = c * torch.rsqrt(c.pow(2).mean(-1, keepdim=True) + norm_eps(norm))
    x = x * norm.weight.detach().float()
    bias = getattr(norm, "bias", None)
    return x + bias.detach().float() if bias is not None else x


@dataclass(frozen=True)
class TokenList:
    """Tokens ranked by a score: the top (most positive) and bottom (most negative) k."""

    top_ids: np.ndarray
    top_values: np.ndarray
    bottom_ids: np.ndarray
    bottom_values: np.ndarray


def _ranked(scores: torch.Tensor, k: int, valid: torch.Tensor) -> TokenList:
    s = scores.clone()
    s[~valid] = float("nan")
    order = torch.argsort(torch.nan_to_num(s, nan=-float("inf")), descending=True)
    low = torch.argsort(torch.nan_to_num(s, nan=float("inf")))
    return TokenList(order[:k].numpy(), scores[order[:k]].numpy(), low[:k].numpy(), scores[low[:k]].numpy())


def valid_tokens(lm) -> torch.Tensor:
    """[d_vocab] bool: real tokens the tokenizer can produce, special tokens left out."""
    n = min(lm.cfg.d_vocab, len(lm.tokenizer))
    mask = torch.zeros(lm.cfg.d_vocab, dtype=torch.bool)
    mask[:n] = True
    mask[list(lm.tokenizer.all_special_ids)] = False
    return mask


def writes(lm, layer: int, neuron: int, k: int = 10) -> TokenList:
    """The tokens whose logits neuron n raises (top) and lowers (bottom) per unit of activation:
    gamma * centre(W_out[n]) @ W_U (the final norm's scale applied, its 1/s left out)."""
    fn = final_norm(lm)
    w = fn.centre(mlp_weights(lm, layer).W_out[neuron].float()) * fn.gamma  # [d_model]
    return _ranked(w @ lm.W_U.detach().float(), k, valid_tokens(lm))


def reads(lm, layer: int, neuron: int, k: int = 10, which: str = "in") -> TokenList:
    """The tokens whose own (normed) embedding drives the neuron's input most (which: "in" or "gate")."""
    w = mlp_weights(lm, layer)
    W, b = (w.W_gate, w.b_gate) if which == "gate" else (w.W_in, w.b_in)
    if W is None:
        raise ValueError("This MLP has no gate")
    scores = normed_embeddings(lm, layer) @ W[:, neuron].float()  # [d_vocab]
    if b is not None:
        scores = scores + float(b[neuron])
    return _ranked(scores, k, valid_tokens(lm))
