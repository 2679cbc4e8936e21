"""Patching page: the batched engine against TransformerLens's patching loop, and the bundled-model
figures the page promises (head x position sweep, path patching of all pairs, EAP, exact ACDC).

Peer: TransformerLens `patching.get_act_patch_resid_pre` and `get_act_patch_attn_head_out_by_pos`
on a GPT-2-small-shaped model with random weights (benchmarks.transformer_lens_twin); the same weights
are copied into a transformers GPT2LMHeadModel that our engine runs, so both compute the same numbers
(checked: max abs difference of the logit differences < 1e-4). Prompts: 16 tokens; the corrupted
prompt differs from the clean one in one token, as an IOI pair does (the second subject at position
10). A second row measures the worst case for us, a pair differing at position 1, where the engine
can skip nothing. Both sides run interleaved on the same single torch thread; each side computes
the logit difference of two answer tokens at the last position.

TransformerLens runs one forward pass per patch (192 for the stream sweep, 2,304 for heads by
position). Ours runs the clean and corrupted prompts once, skips the patches that change nothing,
starts each patched run at its first changed position with the prefix's keys and values cached,
batches every patch of a start position into one pass, and reads two unembedding columns instead of
50,257 (core.interp.patching.engine).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from benchmarks import Result, interleaved, median_of, transformer_lens_twin

N_POS, DIFF_AT, DIFF_WORST = 16, 10, 1
RIGHT, WRONG = 5, 6  # answer token ids (random weights: any two ids)
REPEATS = int(os.environ.get("LAB_BENCH_REPEATS", "5"))
# TransformerLens runs 2,304 forward passes per repeat of the head sweep (minutes each on a busy CPU)
HEAD_REPEATS = int(os.environ.get("LAB_BENCH_HEAD_REPEATS", "3"))
# The worst case of the head sweep (a pair differing at position 1) runs with LAB_BENCH_WORST_HEADS=1.


def _gpt2_config():
    from transformers import GPT2Config

    return GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024,
                      tie_word_embeddings=False, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)


def hf_twin(tl_model, config):
    """A transformers GPT2LMHeadModel holding exactly the weights of a TransformerLens GPT-2."""
    from transformers import GPT2LMHeadModel

    from core.models import hooked_attention

    hooked_attention.register()
    hf = GPT2LMHeadModel(config).eval()
    sd = tl_model.state_dict()
    d, H = config.n_embd, config.n_head
    with torch.no_grad():
        t = hf.transformer
        t.wte.weight.copy_(sd["embed.W_E"])
        t.wpe.weight.copy_(sd["pos_embed.W_pos"])
        for i, block in enumerate(t.h):
            p = f"blocks.{i}."
            block.ln_1.weight.copy_(sd[p + "ln1.w"])
            block.ln_1.bias.copy_(sd[p + "ln1.b"])
            qkv = [sd[p + f"attn.W_{x}"].permute(1, 0, 2).reshape(d, d) for x in "QKV"]  # [d_model, H*d_head]
            block.attn.c_attn.weight.copy_(torch.cat(qkv, dim=1))
            block.attn.c_attn.bias.copy_(torch.cat([sd[p + f"attn.b_{x}"].reshape(-1) for x in "QKV"]))
            block.attn.c_proj.weight.copy_(sd[p + "attn.W_O"].reshape(H * (d // H), d))
            block.attn.c_proj.bias.copy_(sd[p + "attn.b_O"])
            block.ln_2.weight.copy_(sd[p + "ln2.w"])
            block.ln_2.bias.copy_(sd[p + "ln2.b"])
            block.mlp.c_fc.weight.copy_(sd[p + "mlp.W_in"])
            block.mlp.c_fc.bias.copy_(sd[p + "mlp.b_in"])
            block.mlp.c_proj.weight.copy_(sd[p + "mlp.W_out"])
            block.mlp.c_proj.bias.copy_(sd[p + "mlp.b_out"])
        t.ln_f.weight.copy_(sd["ln_final.w"])
        t.ln_f.bias.copy_(sd["ln_final.b"])
        hf.lm_head.weight.copy_(sd["unembed.W_U"].T)
    hf.set_attn_implementation("lab_hooked")
    return hf


class _NoTokenizer:
    """What HookedLM needs of a tokenizer when the benchmark hands it token ids directly."""

    bos_token_id = eos_token_id = pad_token_id = 0
    all_special_ids: list[int] = []

    def __len__(self) -> int:
        return 50257


def _pair(diff_at: int):
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(100, 50000, (1, N_POS), generator=gen)
    clean[0, 0] = 0
    corrupt = clean.clone()
    corrupt[0, diff_at] = 777
    return clean, corrupt


def _task(clean, corrupt):
    from core.interp.patching.tasks import PatchingTask

    labels = tuple(str(p) for p in range(N_POS))
    return PatchingTask("benchmark", clean, corrupt, torch.tensor([[RIGHT, WRONG]]), labels, {}, "", "", "",
                        "", "random tokens")


def _peer_and_ours(kind: str, diff_at: int):
    """(peer(), ours(), max abs diff of their last results) for a sweep kind on the GPT-2-small twin."""
    from transformer_lens import patching

    from core.interp.patching.engine import PatchEngine
    from core.interp.patching.sweeps import run_sweep
    from core.models.loading import wrap

    config = _gpt2_config()
    tl = transformer_lens_twin(config)
    with torch.no_grad():
        tl.unembed.b_U.zero_()  # transformers' GPT-2 has no unembedding bias
    lm = wrap(hf_twin(tl, config), _NoTokenizer(), spec="bench-gpt2-small-shape")
    clean, corrupt = _pair(diff_at)
    _, clean_cache = tl.run_with_cache(clean)
    last = {}

    def metric(logits):
        return logits[0, -1, RIGHT] - logits[0, -1, WRONG]

    sweep = {"stream": patching.get_act_patch_resid_pre,
             "heads": patching.get_act_patch_attn_head_out_by_pos}[kind]

    @torch.no_grad()
    def peer():
        last["peer"] = sweep(tl, corrupt, clean_cache, metric)

    def ours():
        engine = PatchEngine(lm, _task(clean, corrupt))  # the clean and corrupted runs are part of the cost
        last["ours"] = run_sweep(engine, "stream" if kind == "stream" else "heads_by_pos")

    def diff() -> float:
        mine, theirs = last["ours"], last["peer"].numpy()
        if kind == "stream":  # TransformerLens: resid_pre of each layer = our stream rows embed .. layer L-2
            a = mine.raw[0, : config.n_layer]
        else:  # TransformerLens: [layer, pos, head]; ours: [layer * head, pos]
            a = mine.raw[0].reshape(config.n_layer, config.n_head, N_POS).transpose(0, 2, 1)
        return float(np.abs(a - theirs).max())
    return peer, ours, diff


def _figures_vs_peer() -> list[Result]:
    rows = []
    if transformer_lens_twin(_gpt2_config()) is None:
        return [Result("patching vs TransformerLens (TransformerLens absent)", float("nan"), "s",
                       peer="TransformerLens (absent)")]
    worst_heads = os.environ.get("LAB_BENCH_WORST_HEADS") == "1"  # 2,304 more peer passes per repeat
    for kind, label, repeats in (("stream", "resid_pre, every layer x position", REPEATS),
                                 ("heads", "attn head out by position, every head x position", HEAD_REPEATS)):
        for diff_at in (DIFF_AT, DIFF_WORST):
            if kind == "heads" and diff_at == DIFF_WORST and not worst_heads:
                continue
            peer, ours, diff = _peer_and_ours(kind, diff_at)
            cmp = interleaved(ours, peer, repeats=repeats, warmup=0, threads=1)
            where = "IOI-like pair" if diff_at == DIFF_AT else "worst case"
            rows.append(cmp.result(
                f"patch {label}, GPT-2-small shape, {N_POS} tok, {where} (differs at pos {diff_at})",
                "TransformerLens", goal=">= 10x faster (ratio <= 0.1), max abs diff < 1e-4",
                note=f"max abs diff {diff():.2e}; ratio = ours / TransformerLens"))
    return rows


def _bundled_figures() -> list[Result]:
    from core.interp.patching import circuits, path_patching
    from core.interp.patching.engine import PatchEngine
    from core.interp.patching.sweeps import run_sweep
    from core.interp.patching.tasks import build_task
    from core.models import ModelLoadError, load_model

    try:
        lm = load_model()
    except ModelLoadError as err:
        return [Result("patching, bundled model (missing)", float("nan"), "s", note=str(err))]
    torch.set_num_threads(1)
    rows = []
    for behaviour in ("ioi", "induction"):
        task = build_task(lm, behaviour)

        def fresh(task=task):
            return PatchEngine(lm, task)
        where = f"bundled, {behaviour} ({task.n_batch} prompts x {task.n_pos} tok), 1 thread"
        for name, fn, goal in (
            ("head x position sweep (with the clean + corrupted runs)",
             lambda: run_sweep(fresh(), "heads_by_pos"), "< 2 s"),
            ("path patching, every sender -> receiver pair (q, k, v, logits)",
             lambda: path_patching.path_patch_all(fresh()), "< 2 s"),
            ("EAP, every edge", lambda: circuits.eap_scores(fresh()), "< 2 s"),
        ):
            median, spread = median_of(fn, repeat=REPEATS)
            rows.append(Result(f"{name}, {where}", median, "s", goal=goal,
                               note=f"min-max {spread[0]:.2f}-{spread[1]:.2f} s"))
        start = time.perf_counter()
        result = circuits.acdc(fresh(), threshold=circuits.ACDC_THRESHOLD)
        rows.append(Result(f"exact ACDC, {where}", time.perf_counter() - start, "s", goal="< 30 s",
                           note=f"{result.n_forward} patched passes, {int(result.kept.sum())} of "
                                f"{result.graph.n_edges} edges kept"))
    return rows


def run() -> list[Result]:
    return _bundled_figures() + _figures_vs_peer()
