"""Block norms switched off: a transformer with only its final LayerNorm.

GPT-2 normalises the residual stream before every attention layer and MLP (ln_1, ln_2) and once more
before the unembedding (ln_f). The small attention-only models of the training page can leave the
block norms out, as the toy models of Elhage et al. (2021) are often drawn, and keep only the final
one: measured here, that is what lets a 2-layer model form an induction head on repeated random
tokens within a minute (core.interp.training.presets).

Such a model is still stored as an ordinary GPT-2 / GPT-NeoX checkpoint, with the same tensor names
and shapes: each switched-off norm becomes a PassThroughNorm, a LayerNorm whose forward returns its
input, with its weight (1) and bias (0) kept and frozen. The config records the choice
(config.lab_block_norms = False) and core.models.loading puts the pass-through norms back when it
loads the folder. Another library that loads the checkpoint would normalise inside the blocks again,
which is a different model: the training page says so beside the download.
"""

from __future__ import annotations

import torch
from torch import nn

BLOCK_NORMS_FLAG = "lab_block_norms"


class PassThroughNorm(nn.LayerNorm):
    """A LayerNorm switched off: forward returns its input unchanged (weight 1 and bias 0 kept)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def block_norm_modules(model) -> list[nn.Module]:
    """The norms inside the blocks (not the final one) of a GPT-2 or GPT-NeoX model."""
    kind = model.config.model_type
    if kind == "gpt2":
        return [ln for block in model.transformer.h for ln in (block.ln_1, block.ln_2)]
    if kind == "gpt_neox":
        return [ln for layer in model.gpt_neox.layers
                for ln in (layer.input_layernorm, layer.post_attention_layernorm)]
    raise ValueError(f"block norms can be switched off in GPT-2 and GPT-NeoX models, not {kind!r}")


def switch_off_block_norms(model) -> None:
    """Make every block norm of `model` a PassThroughNorm (frozen at weight 1, bias 0) and record it
    in the config, so the saved folder loads the same way (apply_saved_norms)."""
    with torch.no_grad():
        for ln in block_norm_modules(model):
            ln.__class__ = PassThroughNorm
            ln.weight.fill_(1.0)
            ln.bias.fill_(0.0)
            ln.weight.requires_grad_(False)
            ln.bias.requires_grad_(False)
    setattr(model.config, BLOCK_NORMS_FLAG, False)


def apply_saved_norms(model) -> None:
    """After loading a folder: switch the block norms off again if its config says they were."""
    if getattr(model.config, BLOCK_NORMS_FLAG, True) is False:
        switch_off_block_norms(model)


def normalization_of(module: nn.Module, default: str) -> str:
    """"none" for a switched-off norm, else the model's normalization ("layernorm" / "rmsnorm")."""
    return "none" if isinstance(module, PassThroughNorm) else default
