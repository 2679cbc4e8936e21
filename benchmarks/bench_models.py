"""run_with_cache (every activation kept, 128 tokens) against its floor and its peer.

- Floor: a plain Hugging Face forward pass of the same shape (its default SDPA attention, nothing
  kept). run_with_cache does that forward pass and keeps every activation (the attention pattern
  too, so it needs the step-by-step attention), so the floor is the limit; the goal is <= 1.05x.
- Peer: TransformerLens's run_with_cache on a twin of the same shape (requirements-bench.txt brings
  it; run `.venv-bench/bin/python -m benchmarks models`; without it the peer rows are left out).
- Also: our plain forward pass (no hooks active: the fused attention kernel runs; on GPT-2 models
  HookedLM runs core.models.direct_forward, the same modules without transformers' machinery), and a
  run_with_cache that keeps every activation but the attention's own (q, k, v, scores, pattern, z:
  the fused kernel still runs), against the floor. The three rows split the cost of a full cache:
  the hook points, keeping activations (fresh memory for each, where a plain pass reuses a few warm
  buffers), and the step-by-step attention that materialises the patterns.

Every model gets random weights of its shape (the timing does not depend on the values) and the same
tokens. Ours and the other side run interleaved (benchmarks.interleaved), on 1 and on 2 torch
threads, REPEATS times each; a figure is the median, a ratio the median of the per-pair ratios with
its min-max spread. Shapes: the bundled model's configuration (4 layers, d_model 128, 4 heads, vocab
634, exact GELU) and GPT-2 small's (12 layers, d_model 768, 12 heads, vocab 50257, tanh GELU).
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from benchmarks import Result, interleaved, transformer_lens_twin
from core.models.loading import wrap

SHAPES = {
    # the bundled model's configuration (assets/bundled/config.json): exact GELU, one operation
    "bundled shape (4L, d128)": dict(n_layer=4, n_embd=128, n_head=4, n_inner=512, vocab_size=634,
                                     activation_function="gelu"),
    # GPT-2's own: the tanh approximation of GELU ("gelu_new")
    "GPT-2 small shape (12L, d768)": dict(n_layer=12, n_embd=768, n_head=12, n_inner=3072,
                                          vocab_size=50257, activation_function="gelu_new"),
}
N_TOKENS = 128
THREADS = (1, 2)
REPEATS = {"bundled shape (4L, d128)": 30, "GPT-2 small shape (12L, d768)": 7}
# calls per timed repeat: one bundled-shape pass takes about 5 ms, where a single call's timing
# scattered the ratio from 1.05 to 1.34
CALLS = {"bundled shape (4L, d128)": 10, "GPT-2 small shape (12L, d768)": 1}
ATTENTION_SITES = ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z")
FLOOR_GOAL = "<= 1.05x plain HF forward"


def _config(shape: dict) -> GPT2Config:
    return GPT2Config(n_positions=1024, bos_token_id=0, eos_token_id=0, **shape)


def run() -> list[Result]:
    torch.manual_seed(0)
    rows = []
    for label, shape in SHAPES.items():
        hf = GPT2LMHeadModel(_config(shape)).eval()
        lm = wrap(GPT2LMHeadModel(_config(shape)).eval(), None)
        tl = transformer_lens_twin(_config(shape))
        tokens = torch.randint(0, shape["vocab_size"], (1, N_TOKENS))
        calls = CALLS[label]
        outside_attention = [n for n in lm.hook_names() if not n.endswith(ATTENTION_SITES)]

        def repeated(fn, calls=calls):
            return lambda: [fn() for _ in range(calls)]

        @repeated
        def plain(hf=hf, tokens=tokens):
            with torch.no_grad():
                hf(input_ids=tokens, use_cache=False)

        @repeated
        def ours_cache(lm=lm, tokens=tokens):
            lm.run_with_cache(tokens)

        @repeated
        def ours_cache_outside_attention(lm=lm, tokens=tokens, names=outside_attention):
            lm.run_with_cache(tokens, names)

        @repeated
        def ours_forward(lm=lm, tokens=tokens):
            lm(tokens)

        @repeated
        def peer_cache(tl=tl, tokens=tokens):
            with torch.no_grad():
                tl.run_with_cache(tokens)

        repeats, per_call = REPEATS[label], 1e3 / calls
        timing = f"; {calls} calls per repeat" if calls > 1 else ""
        for threads in THREADS:
            floor = interleaved(ours_cache, plain, repeats=repeats, threads=threads)
            rows.append(floor.result(f"run_with_cache, {label}, {N_TOKENS} tok", "plain HF forward (floor)",
                                     unit="ms", scale=per_call, goal=FLOOR_GOAL,
                                     note="every activation kept, patterns included" + timing))
            kept = interleaved(ours_cache_outside_attention, plain, repeats=repeats, threads=threads)
            rows.append(kept.result(f"run_with_cache of the {len(outside_attention)} activations outside "
                                    f"the attention, {label}, {N_TOKENS} tok", "plain HF forward (floor)",
                                    unit="ms", scale=per_call,
                                    note="fused attention; the cost of keeping activations" + timing))
            forward = interleaved(ours_forward, plain, repeats=repeats, threads=threads)
            rows.append(forward.result(f"forward (no hooks), {label}, {N_TOKENS} tok",
                                       "plain HF forward (floor)", unit="ms", scale=per_call,
                                       note="hook points idle: fused attention" + timing))
            if tl is not None:
                peer = interleaved(ours_cache, peer_cache, repeats=repeats, threads=threads)
                rows.append(peer.result(f"run_with_cache, {label}, {N_TOKENS} tok", "TransformerLens",
                                        unit="ms", scale=per_call, goal="<= 0.6x TransformerLens",
                                        note=timing.removeprefix("; ")))
    return rows
