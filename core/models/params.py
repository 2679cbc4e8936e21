"""Counting parameters: the one counter every page, loader and trainer uses.

Tied weights (GPT-2's embedding is also its unembedding) are one tensor in two places, so each
tensor is counted once.
"""

from __future__ import annotations

from torch import nn


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied tensors once); trainable_only counts requires_grad ones."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
