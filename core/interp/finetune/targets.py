"""Which weight matrices a fine-tune adapts, named by what they do rather than by a checkpoint's
module names.

Every transformer block has the same four kinds of matrix: attention's query/key/value projection
(W_Q, W_K, W_V), its output projection (W_O), and the MLP's input and output matrices (W_in, W_out).
Each architecture spells them differently (GPT-2's `attn.c_attn` holds W_Q, W_K and W_V side by side;
Llama has `self_attn.q_proj`, `k_proj` and `v_proj`), so the lab picks matrices by role and lets the
model's adapter (core.models.adapters) say which modules play that role.

GPT-2 stores its weights transposed, [d_in, d_out] (transformers' Conv1D); PEFT calls that layout
fan_in_fan_out. `matrix_dims` always answers in the mathematical (d_out, d_in).
"""

from __future__ import annotations

from torch import nn
from transformers.pytorch_utils import Conv1D


def target_modules(lm, roles, layers=None) -> dict[str, tuple[int, str, str]]:
    """Full module name -> (layer, role, name inside the block) for the chosen roles and layers."""
    names = {id(m): n for n, m in lm.model.named_modules()}
    out = {}
    for layer in range(lm.cfg.n_layers) if layers is None else layers:
        prefix = names[id(lm.adapter.blocks()[layer])]
        for role in roles:
            for rel in lm.adapter.target_roles[role]:
                out[f"{prefix}.{rel}"] = (layer, role, rel)
    return out


def is_conv1d(model: nn.Module, names) -> bool:
    """Whether the named modules store W as [d_in, d_out] (GPT-2's Conv1D: PEFT's fan_in_fan_out)."""
    modules = dict(model.named_modules())
    return any(isinstance(modules[n], Conv1D) for n in names)


def matrix_dims(module: nn.Module) -> tuple[int, int] | None:
    """(d_out, d_in) of a weight matrix module (nn.Linear or Conv1D); None for anything else."""
    if isinstance(module, nn.Linear):
        return module.out_features, module.in_features
    if isinstance(module, Conv1D):
        d_in, d_out = module.weight.shape  # Conv1D stores [d_in, d_out]
        return int(d_out), int(d_in)
    return None
