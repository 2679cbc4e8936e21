"""Reading the residual stream the way the model's last step does: final norm, then unembedding.

The model turns its last residual vector x into logits with

    logits = norm(x) @ W_U + b_U

where norm is a LayerNorm (subtract the mean over d_model, divide by the standard deviation, scale by
gamma, add beta) or an RMSNorm (divide by the root mean square, scale by gamma). Applying the same
step to the stream after an earlier layer is the logit lens.

The norm divides by a number computed from x itself, so it is not linear. Direct logit attribution
freezes that number: with s = the final stream's scale (its standard deviation, or RMS) taken from
the real forward pass, the readout of x = sum of parts is

    logits = sum_parts (gamma * centre(part) / s) @ W_U  +  beta @ W_U + b_U

exactly, because centring and a fixed division are linear. That is what makes "this head added 2.3
to the logit difference" a true statement about the model's own output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def norm_eps(module) -> float:
    """The epsilon a norm module adds under its square root (names differ per family)."""
    for attr in ("eps", "variance_epsilon", "epsilon"):
        if hasattr(module, attr):
            return float(getattr(module, attr))
    return 1e-5


@dataclass(frozen=True)
class FinalNorm:
    """The final norm's parameters, as plain tensors (float32)."""

    kind: str  # "layernorm" or "rmsnorm"
    gamma: torch.Tensor  # [d_model]
    beta: torch.Tensor | None  # [d_model] (LayerNorm with a bias), else None
    eps: float

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        """The linear part of the norm: subtract the mean over d_model (LayerNorm), else x."""
        return x - x.mean(-1, keepdim=True) if self.kind == "layernorm" else x

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The number the norm divides by, per vector: [..., d_model] -> [..., 1]."""
        c = self.centre(x)
        return torch.sqrt(c.pow(2).mean(-1, keepdim=True) + self.eps)


def final_norm(lm) -> FinalNorm:
    ln = lm.adapter.ln_final()
    beta = getattr(ln, "bias", None)
    return FinalNorm(lm.cfg.normalization, ln.weight.detach().float(),
                     None if beta is None else beta.detach().float(), norm_eps(ln))


def unembed_bias(lm) -> torch.Tensor | None:
    """b_U [d_vocab], or None (most models have no unembedding bias)."""
    bias = getattr(lm.model.get_output_embeddings(), "bias", None)
    return None if bias is None else bias.detach().float()


def readout(lm, x: torch.Tensor) -> torch.Tensor:
    """Logits from residual vectors x [..., d_model] through the model's own final norm and
    unembedding modules (so it is differentiable in x; the model's weights stay frozen)."""
    return lm.model.get_output_embeddings()(lm.adapter.ln_final()(x))


def log_probs(lm, x: torch.Tensor) -> torch.Tensor:
    """log softmax of readout(x), float32: [..., d_vocab]."""
    return torch.log_softmax(readout(lm, x).float(), dim=-1)
