"""The shape of a model, in the names TransformerLens uses, whatever checkpoint it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and architecture facts every page needs.

    arch is the architecture family ("gpt2", "gpt_neox", "llama"); positional is "learned" (a W_pos
    table added to the embedding) or "rotary" (q and k rotated by position inside attention);
    parallel_attn_mlp is True when attention and MLP both read the same residual stream (Pythia),
    in which case there is no resid_mid.
    """

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    arch: str
    n_kv_heads: int
    positional: str
    normalization: str
    act_fn: str
    parallel_attn_mlp: bool
    n_params: int

    @property
    def has_resid_mid(self) -> bool:
        return not self.parallel_attn_mlp
