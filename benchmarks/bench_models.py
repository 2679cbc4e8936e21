"""Forward pass with a full activation cache, 128 tokens: ours against TransformerLens.

Both models get random weights of the same shape (timing does not depend on the values), the
same tokens, and the same two CPU threads. TransformerLens comes from requirements-bench.txt;
without it the peer column stays empty. Plain Hugging Face forward (its default SDPA attention, no
cache) is reported as a reference floor.
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from benchmarks import Result, best_of, transformer_lens_twin
from core.models.loading import wrap

SHAPES = {
    "bundled shape (4L, d128)": dict(n_layer=4, n_embd=128, n_head=4, n_inner=512, vocab_size=1024),
    "GPT-2 small shape (12L, d768)": dict(n_layer=12, n_embd=768, n_head=12, n_inner=3072,
                                          vocab_size=50257),
}
N_TOKENS = 128


def run() -> list[Result]:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    for label, shape in SHAPES.items():
        hf = GPT2LMHeadModel(GPT2Config(n_positions=1024, **shape)).eval()
        tokens = torch.randint(0, shape["vocab_size"], (1, N_TOKENS))
        with torch.no_grad():
            plain = best_of(lambda hf=hf, tokens=tokens: hf(input_ids=tokens, use_cache=False))
        lm = wrap(GPT2LMHeadModel(GPT2Config(n_positions=1024, **shape)).eval(), None)
        ours = best_of(lambda lm=lm, tokens=tokens: lm.run_with_cache(tokens))
        tl = transformer_lens_twin(GPT2Config(n_positions=1024, **shape))
        peer = None
        if tl is not None:
            with torch.no_grad():
                peer = best_of(lambda tl=tl, tokens=tokens: tl.run_with_cache(tokens))
        rows.append(Result(f"run_with_cache, {label}, {N_TOKENS} tok", ours * 1e3, "ms",
                           peer="TransformerLens" if peer is not None else "TransformerLens (absent)",
                           peer_value=None if peer is None else peer * 1e3,
                           goal="<= 0.6x TransformerLens",
                           note=f"plain HF forward without cache: {plain * 1e3:.1f} ms "
                                f"(ours = {ours / plain:.2f}x of it)"))
    return rows
