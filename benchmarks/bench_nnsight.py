"""The nnsight backend against HookedLM on this machine, and the bytes one page request moves.

Overhead: the same model and the same request through NNsightLM (an nnsight trace, run here with
remote=False) and through HookedLM, interleaved (benchmarks.interleaved) on 1 torch thread, as the
app runs. Requests: the residual stream after every layer (run_with_cache of the resid_post
points), the same read at the last position only (what a logit-lens chart draws), and a steered,
greedy continuation of 20 tokens. Shapes: the bundled model itself, and GPT-2 small's shape (random
weights, 12 layers, d_model 768, vocab 50257). Prompts: 24 tokens.

Bytes: each page's request serialized exactly as a remote call would be (zstd-compressed, as
nnsight sends it) and its result as the server would return it (torch.save, zstd); measured on the
GPT-2 small shape with NNsightLM.measure = True. "Whole cache" is the contrast: every activation
the backend offers, at every position. Activation sizes scale with d_model and the layer count: a
Llama-3.1-8B stream vector is 4096 floats to GPT-2 small's 768.
"""

from __future__ import annotations

import copy

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from benchmarks import Result, interleaved
from core.models import load_model
from core.models.backend import Write, attribution_scores, head_projections, lens_logits, read_at
from core.models.generation import SamplingSettings, generate_batch
from core.models.hook_names import act_name, stream_hook
from core.models.loading import wrap

N_TOKENS = 24
REPEATS = {"bundled model": 20, "GPT-2 small shape": 7}
GPT2_SMALL = dict(n_layer=12, n_embd=768, n_head=12, n_inner=3072, vocab_size=50257, n_positions=1024,
                  bos_token_id=0, eos_token_id=0)
STEER = SamplingSettings(max_new_tokens=20, temperature=0)


def _pairs():
    """(label, HookedLM, NNsightLM) on the same weights."""
    from core.models.nnsight_backend import NNsightLM

    bundled = load_model()
    yield "bundled model", bundled, NNsightLM.wrap(bundled.detached_model(), bundled.tokenizer,
                                                   spec="bundled+nnsight", is_bundled=True)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**GPT2_SMALL)).eval()
    hooked = wrap(copy.deepcopy(model), bundled.tokenizer, spec="gpt2-small-shape")
    nn = NNsightLM.wrap(model, bundled.tokenizer, spec="gpt2-small-shape+nnsight")
    yield "GPT-2 small shape", hooked, nn


def _overhead(label, hooked, nn) -> list[Result]:
    tokens = torch.randint(1, min(hooked.cfg.d_vocab, 600), (1, N_TOKENS))
    names = [stream_hook(L) for L in range(hooked.cfg.n_layers)]
    push = Write(stream_hook(hooked.cfg.n_layers // 2), torch.full((hooked.cfg.d_model,), 0.5), start_pos=4)
    rows = tokens.repeat(5, 1)
    cases = {
        "resid_post of every layer": (lambda: nn.run_with_cache(tokens, names=names),
                                      lambda: hooked.run_with_cache(tokens, names=names)),
        "the same, last position only": (lambda: read_at(nn, tokens, names),
                                         lambda: read_at(hooked, tokens, names)),
    }

    def nn_steer():
        with nn.hooks([push]):
            nn.generate_batch(rows, STEER)

    def hooked_steer():
        with hooked.hooks([(push.name, push)]):
            generate_batch(hooked, rows, STEER)

    cases["steered generation, 5 rows x 20 tokens"] = (nn_steer, hooked_steer)
    out = []
    for what, (ours, peer) in cases.items():
        c = interleaved(ours, peer, repeats=REPEATS[label], threads=1)
        out.append(c.result(f"nnsight backend: {what}, {label}, {N_TOKENS} tok", "HookedLM", unit="ms",
                            scale=1e3, note="an nnsight trace run here (remote=False); same weights"))
    return out


def _bytes(nn) -> list[Result]:
    """Bytes each page request would move to and from NDIF (measured, GPT-2 small shape)."""
    from core.models import remote as rm

    nn.measure = True
    cfg = nn.cfg
    tokens = torch.randint(1, 600, (1, 20))
    batch = torch.randint(1, 600, (8, 20))
    corrupt = batch.clone()
    corrupt[:, 5] = 7
    last = torch.full((8,), 19)
    requests = {
        "logit lens (13 stream points, top 5, last position)":
            lambda: lens_logits(nn, tokens, range(-1, cfg.n_layers)),
        "attention patterns, one layer": lambda: nn.run_with_cache(tokens, names=[act_name("pattern", 5)],
                                                                   stop_at_layer=6),
        "attention patterns, all 12 layers": lambda: nn.run_with_cache(
            tokens, names=[act_name("pattern", L) for L in range(cfg.n_layers)], stop_at_layer=cfg.n_layers),
        "DLA per head (12 layers, one position)": lambda: head_projections(
            nn, tokens, range(cfg.n_layers), torch.randn(cfg.d_model)),
        "steering: 5 coefficients x 20 new tokens": lambda: _steer(nn, tokens),
        "attribution patching, 8 prompt pairs, z of every layer": lambda: attribution_scores(
            nn, batch, corrupt, [act_name("z", L) for L in range(cfg.n_layers)], last * 0 + 3, last * 0 + 4),
        "for contrast: the whole cache and logits": lambda: nn.run_with_cache(tokens),
    }
    out = []
    for what, fn in requests.items():
        log = rm.RequestLog()
        with rm.use_log(log):
            fn()
        sent = sum(r.bytes_sent for r in log.records())
        received = sum(r.bytes_received for r in log.records())
        out.append(Result(f"bytes per request: {what}", (sent + received) / 1e3, "kB",
                          note=f"sent {sent / 1e3:.1f} kB, received {received / 1e3:.1f} kB, "
                               f"{len(log)} request(s); GPT-2 small shape, 20-token prompts"))
    nn.measure = False
    return out


def _steer(nn, tokens):
    coefs = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    vector = torch.randn(nn.cfg.d_model)
    push = Write(stream_hook(6), coefs[:, None, None] * vector)  # one coefficient per row
    with nn.hooks([push]):
        nn.generate_batch(tokens.repeat(5, 1), SamplingSettings(max_new_tokens=20, temperature=0))


def run() -> list[Result]:
    rows = []
    nn_small = None
    for label, hooked, nn in _pairs():
        rows += _overhead(label, hooked, nn)
        nn_small = nn
    rows += _bytes(nn_small)
    return rows
