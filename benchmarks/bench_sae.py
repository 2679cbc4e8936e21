"""SAE training: ours against SAELens's trainer, and the SAE page's default run from Train to result.

1. Ours vs SAELens. An 8x SAE (ReLU + L1) on 250,000 activations of width 128 (synthetic: sums of a
   few of 512 known sparse directions, plus noise), batches of 4,096, one pass, the same settings on
   both sides: Adam (0.9, 0.999), learning rate, L1 coefficient, L1 warm-up, final linear decay of
   the learning rate to 0, activations scaled to an average norm of sqrt(d_in), no resampling.
   SAELens trains its StandardTrainingSAE through its SAETrainer in float32 (its default); ours
   trains with the matrix-product format measured faster on this CPU (core.models.dtype), as the
   page does. Timed interleaved (benchmarks.interleaved: ours, peer, peer, ours, ...) on 1 and on 2
   torch threads, REPEATS each; the figure is the median time and the ratio the median of the
   per-pair ratios with its min-max spread. "At the same held-out loss": both trained SAEs are
   scored with one formula on held-out rows, MSE + l1 x sum_i f_i |W_dec[i]| in the normalised units
   both trained in (SAELens's objective; ours is the same number), and both losses are reported.
   Once more on 1 thread with ours forced to float32: the path a CPU without fast bfloat16 takes.
   On a CPU with AMX, the comparison runs again, on 1 and 2 threads, in a child process whose
   oneDNN is capped at AVX512_CORE_BF16 (core.models.dtype): a CPU with AVX-512 BF16 and no AMX,
   the kind where bfloat16 is slower than float32. Ours then measures which format is faster, as
   it would there; the rows' CPU line names the cap.
2. The page's default run, end to end on one thread: read the activations (no cache), train 800
   steps of a 4x SAE with the page's spliced-loss evaluations, write the report. Once with bfloat16
   products and once with float32; these are the figures the page quotes (ui.sae.controls).

SAELens comes from requirements-bench.txt; without it the peer columns stay empty.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from dataclasses import replace

import torch

from benchmarks import Result, in_child_process, interleaved, median_of
from core.interp.sae.data import synthetic_activations
from core.interp.sae.train import SAETrainer, TrainConfig
from core.models.dtype import ISA_CAP_VARIABLE, cpu_capabilities

N, D_IN, EXPANSION, BATCH = 250_000, 128, 8, 4096
STEPS = N // BATCH  # 61 full batches: one pass
L1, LR, L1_WARMUP, LR_DECAY = 2.0, 4e-3, 0.1, 0.2
REPEATS, THREADS = 5, (1, 2)
PAGE_REPEATS = 3
GOAL = ">= 1.5x SAELens's throughput (time ratio <= 0.67), same held-out loss"
NO_AMX = "AVX512_CORE_BF16"  # oneDNN's ceiling for "AVX-512 BF16, no AMX"


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    data = synthetic_activations(N + 20_000, D_IN, 512, p_active=0.01, noise=0.02, seed=0)
    return data.acts[:N].contiguous(), data.acts[N:].contiguous()


def objective(encode, W_dec: torch.Tensor, b_dec: torch.Tensor, x: torch.Tensor, scale: float) -> float:
    """MSE + L1 x sum f |W_dec| in normalised units, for an SAE that reads raw activations."""
    with torch.no_grad():
        f = encode(x)  # [n, d_sae]
        x_hat = f @ W_dec + b_dec
        mse = (x_hat - x).pow(2).sum(1).mean() * scale**2
        sparsity = (f * W_dec.norm(dim=1)).sum(1).mean() * scale
    return float(mse + L1 * sparsity)


def _scale(acts: torch.Tensor) -> float:
    """The normalisation both trainers use: average norm sqrt(d_in)."""
    return D_IN**0.5 / float(acts.norm(dim=1).mean())


def _ours_config(bf16: bool | None, steps: int = STEPS) -> TrainConfig:
    return TrainConfig(expansion=EXPANSION, l1_coefficient=L1, lr=LR, steps=steps, batch_size=BATCH,
                       bf16=bf16, l1_warmup=L1_WARMUP, lr_decay=LR_DECAY, resample_at=(), log_every=steps,
                       seed=0)


def _ours(acts: torch.Tensor, bf16: bool | None, steps: int = STEPS) -> SAETrainer:
    return SAETrainer(_ours_config(bf16, steps)).fit(acts)


def _lens_available() -> bool:
    try:
        import sae_lens  # noqa: F401
    except ImportError:
        return False
    return True


def _sae_lens(acts: torch.Tensor, steps: int = STEPS):
    """SAELens's trainer on the same data and settings; returns its trained SAE (reading raw
    activations: SAELens folds its normalisation into the weights after fit)."""
    from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer as LensTrainer

    torch.manual_seed(0)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(
        d_in=D_IN, d_sae=EXPANSION * D_IN, l1_coefficient=L1,
        l1_warm_up_steps=int(L1_WARMUP * steps), normalize_activations="expected_average_only_in",
        dtype="float32", device="cpu"))
    cfg = SAETrainerConfig(total_training_samples=steps * BATCH, train_batch_size_samples=BATCH,
                           lr=LR, lr_end=LR, lr_decay_steps=int(LR_DECAY * steps), adam_beta1=0.9,
                           adam_beta2=0.999, device="cpu", autocast=False, n_batches_for_norm_estimate=16)
    gen = torch.Generator().manual_seed(0)

    def batches():
        for _ in itertools.count():
            order = torch.randperm(len(acts), generator=gen)
            for i in range(0, len(acts) - BATCH + 1, BATCH):
                yield acts[order[i:i + BATCH]]

    return LensTrainer(cfg, sae, batches()).fit()


def _compare(acts, held, threads: int, bf16: bool | None, label: str) -> Result:
    """Ours and SAELens interleaved on `threads` threads; both held-out losses in the note."""
    ours_runs, peer_runs = [], []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:  # warm up both (kernels, allocator) on a few steps, on the thread count measured
        _ours(acts, bf16, steps=3)
        _sae_lens(acts, steps=3)
    finally:
        torch.set_num_threads(before)
    cmp = interleaved(lambda: ours_runs.append(_ours(acts, bf16)), lambda: peer_runs.append(_sae_lens(acts)),
                      repeats=REPEATS, warmup=0, threads=threads)
    scale = _scale(acts)
    ours_loss = statistics.median(objective(t.sae_.encode, t.sae_.W_dec, t.sae_.b_dec, held, scale)
                                  for t in ours_runs)
    peer_loss = statistics.median(objective(s.encode, s.W_dec, s.b_dec, held, scale) for s in peer_runs)
    speedups = sorted(p / o for o, p in zip(cmp.ours, cmp.peer, strict=True))
    n = STEPS * BATCH
    note = (f"throughput {n / cmp.ours_median:,.0f} vs {n / cmp.peer_median:,.0f} acts/s: "
            f"{statistics.median(speedups):.2f}x SAELens (spread {speedups[0]:.2f}-{speedups[-1]:.2f}); "
            f"held-out loss ours {ours_loss:.4f}, SAELens {peer_loss:.4f} "
            f"({(ours_loss - peer_loss) / peer_loss:+.1%}); {ours_runs[0].dtype_reason()}")
    return cmp.result(f"SAE training {EXPANSION}x, {n:,} acts x {D_IN}, batch {BATCH}, {label}", "SAELens",
                      goal=GOAL, note=note)


def _ours_only(acts, held, threads: int) -> Result:
    runs = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seconds, spread = median_of(lambda: runs.append(_ours(acts, None)), repeat=REPEATS)
    finally:
        torch.set_num_threads(before)
    loss = objective(runs[0].sae_.encode, runs[0].sae_.W_dec, runs[0].sae_.b_dec, held, _scale(acts))
    return Result(f"SAE training {EXPANSION}x, {STEPS * BATCH:,} acts x {D_IN}, ours", seconds, "s",
                  peer="SAELens (absent)", goal=GOAL, repeats=REPEATS, threads=threads,
                  note=f"held-out loss {loss:.4f}; spread {spread[0]:.2f}-{spread[1]:.2f} s; "
                       f"{runs[0].dtype_reason()}")


def page_default_seconds(bf16: bool) -> tuple[float, int]:
    """One default run of the SAE page without Streamlit, from a cold activation cache: (seconds,
    attributes found). One torch thread, as the app runs."""
    from streamlit import logger

    logger.set_log_level("error")  # the page's cached helpers warn that no Streamlit server runs here
    from core.interp.sae.data import collect_activations, docs_within, split
    from core.interp.sae.features import attribute_token_ids
    from core.interp.sae.report import report
    from core.interp.sae.splice import SpliceEvaluator
    from core.models import load_model
    from core.models.hook_names import stream_hook
    from core.world.datasets import corpus_texts, token_groups
    from ui.sae.compute import DEFAULT_DOCS, HELDOUT, MAX_FLOATS, SPLICE_DOCS
    from ui.sae.controls import BATCH as PAGE_BATCH
    from ui.sae.controls import DEFAULTS, default_layer
    from ui.sae.training import EVALUATIONS

    lm = load_model()
    hook = stream_hook(default_layer(lm.cfg.n_layers))
    config = TrainConfig(expansion=DEFAULTS["expansion"], l1_coefficient=DEFAULTS["l1"], lr=DEFAULTS["lr"],
                         steps=DEFAULTS["steps"], batch_size=PAGE_BATCH, bf16=bf16)
    config = replace(config, eval_every=max(1, config.steps // config.log_every // EVALUATIONS))
    start = time.perf_counter()
    cap = MAX_FLOATS // lm.cfg.d_model
    texts = corpus_texts(int(DEFAULT_DOCS / (1 - HELDOUT)), seed=0)
    _, lengths = lm.tokenize_batch(texts)
    train, held = split(collect_activations(lm, texts[:docs_within(lengths, cap)], hook, max_tokens=cap),
                        1 - HELDOUT)
    evaluate = SpliceEvaluator(lm, hook, *lm.tokenize_batch(corpus_texts(SPLICE_DOCS, seed=12345)))
    trainer = SAETrainer(config, hook_name=hook, model_spec=lm.spec).fit(train.acts, evaluate=evaluate)
    r = report(trainer.sae_, held, attribute_token_ids(lm, token_groups()), lm.cfg.d_vocab, splice=evaluate)
    return time.perf_counter() - start, r.n_found


def _page_default() -> list[Result]:
    out = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        page_default_seconds(True)  # warm up: the model loaded, kernels picked
        for bf16, words in ((True, "bfloat16"), (False, "float32")):
            runs = [page_default_seconds(bf16) for _ in range(PAGE_REPEATS)]
            seconds = sorted(s for s, _ in runs)
            out.append(Result(f"SAE page default run (Train to result), {words}", statistics.median(seconds),
                              "s", goal="< 15 s on one thread", repeats=PAGE_REPEATS, threads=1,
                              note=f"spread {seconds[0]:.1f}-{seconds[-1]:.1f} s; attributes found "
                                   f"{[n for _, n in runs]}; the page quotes this median"))
    finally:
        torch.set_num_threads(before)
    return out


def _training_data() -> tuple[torch.Tensor, torch.Tensor]:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        return _data()
    finally:
        torch.set_num_threads(before)


def without_amx() -> list[Result]:
    """Ours (measured format) against SAELens on 1 and 2 threads; run by run() in a child process
    with oneDNN capped below AMX."""
    acts, held = _training_data()
    return [_compare(acts, held, threads, None, f"measured dtype, oneDNN capped at {NO_AMX} (no AMX)")
            for threads in THREADS]


def run() -> list[Result]:
    acts, held = _training_data()
    results = []
    if _lens_available():
        for threads in THREADS:
            results.append(_compare(acts, held, threads, None, "measured dtype"))
        results.append(_compare(acts, held, 1, False, "ours in float32"))
        if cpu_capabilities()["amx_bf16"] and not os.environ.get(ISA_CAP_VARIABLE):
            results += in_child_process("benchmarks.bench_sae:without_amx", {ISA_CAP_VARIABLE: NO_AMX})
    else:
        results += [_ours_only(acts, held, threads) for threads in THREADS]
    return results + _page_default()
