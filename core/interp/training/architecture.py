"""The model: a small transformer built as a plain `transformers` model, so every page can load it.

Positions come in three schemes:
- learned: a table W_pos [n_ctx, d_model] added to the token embedding (GPT-2);
- rotary: no table; q and k are rotated by an angle proportional to their position inside
  attention, so attention scores depend on the distance between tokens (GPT-NeoX, as in Pythia;
  here with attention and MLP in sequence, like GPT-2);
- none: GPT-2 with its position table fixed at zero. The model then only knows order through the
  causal mask (a token sees how many tokens came before it, not where it is).

Attention-only models keep their MLP modules, so the checkpoint is an ordinary GPT-2 / GPT-NeoX
that every page and every library can load, but each MLP's output weights are fixed at zero (and
never trained): the MLPs write nothing into the residual stream. Their hidden layer is tiny
(ATTN_ONLY_D_MLP units) so they cost almost nothing.

Both families use exact GELU and no dropout. By default they use LayerNorm before each attention
layer and MLP and once more before the unembedding, as GPT-2 does; with block_norms off only the
final one is kept (core.models.norms), which the induction presets need (measured: with the block
norms a 2-layer model on the same data finds a positional shortcut and no induction head within
1,500 steps, without them the head forms at about step 900). The unembedding is tied to the
embedding (W_U = W_E^T, GPT-2's choice) unless `tied` is off, which the presets do so that the
embedding is free to organise itself for the input (the Fourier picture of modular addition reads
W_E alone).

Initialisation is GPT-2's by default (every matrix normal with std 0.02, the matrices that write
into the residual stream scaled down by sqrt(2 n_layers), LayerNorms at 1 and biases at 0), or every
matrix normal with std `init_std` (the induction presets use 0.1, TransformerLens's 0.8/sqrt(d_model)
for d_model 64). Either way it is drawn from the run's own seeded generator rather than torch's
global one, so a run is reproduced exactly by its seed even while other sessions of the server are
training or seeding at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig

from core.models import hooked_attention
from core.models.norms import switch_off_block_norms

Positions = Literal["learned", "rotary", "none"]
POSITIONS: tuple[Positions, ...] = ("learned", "rotary", "none")
GPT2_STD = 0.02  # GPT-2's initialisation: every matrix ~ N(0, 0.02), writes scaled by 1/sqrt(2 n_layers)
ATTN_ONLY_D_MLP = 4  # hidden units of a switched-off MLP
MLP_RATIO = 4  # d_mlp = 4 d_model with MLPs (GPT-2's ratio)


@dataclass(frozen=True)
class ModelSettings:
    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    mlp: bool = False
    positions: Positions = "learned"
    tied: bool = True  # unembedding = embedding^T (GPT-2's choice)
    block_norms: bool = True  # LayerNorm before each attention layer and MLP (off: only the final one)
    init_std: float | None = None  # None: GPT-2's initialisation; else every matrix ~ N(0, init_std)

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:
        return MLP_RATIO * self.d_model if self.mlp else ATTN_ONLY_D_MLP

    def describe(self) -> str:
        kind = "with MLPs" if self.mlp else "attention-only"
        norms = "" if self.block_norms else ", no LayerNorm inside the blocks"
        return (f"{self.n_layers} layer{'s' * (self.n_layers != 1)} x {self.n_heads} heads, d_model "
                f"{self.d_model}, {kind}, {self.positions} positions{norms}")


def config_for(m: ModelSettings, d_vocab: int, n_ctx: int):
    """The transformers config: GPT-2 for learned / no positions, GPT-NeoX for rotary."""
    if m.positions == "rotary":
        return GPTNeoXConfig(
            vocab_size=d_vocab, hidden_size=m.d_model, num_hidden_layers=m.n_layers,
            num_attention_heads=m.n_heads, intermediate_size=m.d_mlp, hidden_act="gelu",
            max_position_embeddings=n_ctx, rotary_pct=1.0, use_parallel_residual=False,
            attention_dropout=0.0, hidden_dropout=0.0, tie_word_embeddings=m.tied,
            bos_token_id=0, eos_token_id=0, pad_token_id=None,
        )
    return GPT2Config(
        vocab_size=d_vocab, n_positions=n_ctx, n_embd=m.d_model, n_layer=m.n_layers, n_head=m.n_heads,
        n_inner=m.d_mlp, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        tie_word_embeddings=m.tied, bos_token_id=0, eos_token_id=0, pad_token_id=None,
    )


def frozen_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters fixed at zero: MLP outputs of an attention-only model, the position table
    of a model without positions. They stay out of the optimizer (as do switched-off norms')."""
    out = []
    for name, param in model.named_parameters():
        if getattr(model, "_lab_attn_only", False) and name.endswith(_MLP_OUTPUTS):
            out.append(param)
        if getattr(model, "_lab_no_positions", False) and name.endswith("wpe.weight"):
            out.append(param)
    return out


_MLP_OUTPUTS = ("mlp.c_proj.weight", "mlp.c_proj.bias", "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias")
_WRITES_TO_STREAM = ("attn.c_proj.weight", "mlp.c_proj.weight", "attention.dense.weight",
                     "mlp.dense_4h_to_h.weight")


def initialise(model, m: ModelSettings, seed: int) -> None:
    """Draw every parameter from a generator seeded with `seed` (see the module docstring): GPT-2's
    rule when m.init_std is None, else every matrix from a normal of std m.init_std."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():  # a fixed order: the same draws every time
            if param.ndim >= 2:
                if m.init_std is not None:
                    std = m.init_std
                else:
                    std = GPT2_STD / (2 * m.n_layers) ** 0.5 if name.endswith(_WRITES_TO_STREAM) else GPT2_STD
                param.copy_(torch.randn(param.shape, generator=gen) * std)
            elif name.endswith("bias"):
                param.zero_()
            else:  # LayerNorm gains
                param.fill_(1.0)


def build_model(m: ModelSettings, d_vocab: int, n_ctx: int, seed: int):
    """A freshly initialised transformers model (seeded), switched-off parts zeroed and frozen."""
    hooked_attention.register()
    model = AutoModelForCausalLM.from_config(config_for(m, d_vocab, n_ctx),
                                             attn_implementation=hooked_attention.IMPLEMENTATION)
    initialise(model, m, seed)  # every parameter redrawn from the run's own generator
    model._lab_attn_only = not m.mlp
    model._lab_no_positions = m.positions == "none"
    with torch.no_grad():
        for param in frozen_parameters(model):
            param.zero_()
            param.requires_grad_(False)
    if not m.block_norms:
        switch_off_block_norms(model)
    return model
