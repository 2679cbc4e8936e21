"""LoRA page: our fine-tuning loop against a plain PEFT loop, and the page's default run.

1. LoRA on the changed-fact task, two workloads:
   - the page's defaults: 150 steps of 8 rows x 64 tokens;
   - the workload issue 21 set its goal on (wave 1's benchmark): 300 steps of 16 rows x 64 tokens.
   In both the old skills (IOI, facts, induction, validation loss, task) are measured every 25 steps.
   Ours is core.interp.finetune.training.FineTuner as the page runs it: the number format chosen by
   measurement (core.models.dtype.autocast_bf16), a progress callback every step, and the
   measurements. The peer is PEFT's LoRA (r = 8, alpha 16, the same four kinds of matrix) driven by
   a plain float32 loop on the model as transformers loads it (its default attention), no Trainer,
   no measurements. Each side's time includes its setup (a copy of the model or a fresh load, PEFT's
   injection, packing the rows). They run interleaved (benchmarks.interleaved: ours, peer, peer,
   ours, ...), 5 repeats after a warm-up, at 1 and at 2 torch threads alike; the figure is the median
   of the per-repeat ratios, with its min-max spread. Goal (issue 21): <= 0.8x the peer.
   The smaller batch is the harder case for a ratio: a step's fixed cost (Python, the dispatcher,
   operations too small to use a second thread) weighs more next to 512 tokens of arithmetic, and
   the measurements, which the peer does not make, are a larger share of a shorter run.
2. The page's default run: LoRA and full fine-tuning, 150 steps each, the skills every 25 steps, on
   one torch thread (the app's setting): the median of 3 runs. Goal (issue 12): under 20 s. The page
   quotes this figure (ui/lora/compute.py, DEFAULT_RUN_S).

About 8 minutes on a quiet 2-core machine.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import torch

from benchmarks import Result, interleaved, machine_context
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.forgetting import SkillSuite
from core.interp.finetune.lora import peft_config
from core.interp.finetune.packing import cycle_texts, pack_rows
from core.interp.finetune.tasks import make_task
from core.interp.finetune.training import FineTuner
from core.models import load_model
from core.models.dtype import PROBE_SIZE, fastest_matmul_dtype
from core.models.loading import BUNDLED_DIR

LORA = FinetuneConfig()  # the page's defaults: r = 8, 150 steps, 8 x 64 tokens, skills every 25
ISSUE_WORKLOAD = replace(LORA, steps=300, batch=16)  # issue 21's goal was set on this one
FULL = replace(LORA, method="full", lr=2e-4)  # the page's full fine-tuning learning rate
THREADS = (1, 2)
REPEATS = 5


def _peer(lm, task, cfg: FinetuneConfig = LORA) -> float:
    """PEFT LoRA in float32 with a plain loop, on a fresh transformers model (default attention); the
    final training loss."""
    import torch.nn.functional as F
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(BUNDLED_DIR) if lm.is_bundled else lm.spec)
    torch.manual_seed(0)
    model = get_peft_model(model, peft_config(lm, cfg))  # the same target matrices
    rows = pack_rows(lm, cycle_texts(task.texts, cfg.train_rows * cfg.seq_len, cfg.seed), cfg.seq_len)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in range(cfg.steps):
        batch = rows[torch.randint(len(rows), (cfg.batch,), generator=gen)]  # [batch, seq_len]
        logits = model(input_ids=batch, use_cache=False).logits  # [batch, pos, d_vocab]
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def _ours(lm, task, suite, cfg: FinetuneConfig = LORA) -> FineTuner:
    ticks = []
    return FineTuner(cfg).fit(lm, task, suite, callback=lambda p: ticks.append(p.step))


def _default_run(lm, task) -> tuple[float, dict]:
    """The page's default press of Train: the skill suite, then LoRA, then full fine-tuning."""
    start = time.perf_counter()
    suite = SkillSuite.build(lm, task)
    runs = {cfg.method: _ours(lm, task, suite, cfg) for cfg in (LORA, FULL)}
    return time.perf_counter() - start, runs


def _versus_peer(lm, task, suite, cfg: FinetuneConfig, threads: int, note: str) -> Result:
    """Ours against the plain PEFT loop on `cfg`'s workload at `threads` torch threads (both sides)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dtype = fastest_matmul_dtype()  # the matmul probe at this thread count
        _ours(lm, task, suite, replace(cfg, steps=20))  # warm-up: kernels, caches, both dtype probes
        _peer(lm, task, replace(cfg, steps=20))
    finally:
        torch.set_num_threads(before)
    last: dict[str, FineTuner] = {}

    def ours() -> None:
        last["run"] = _ours(lm, task, suite, cfg)

    comparison = interleaved(ours, lambda: _peer(lm, task, cfg), repeats=REPEATS, warmup=0, threads=threads)
    run_ = last["run"]
    step = ("" if run_.step_seconds_ is None else
            f"; its own step timed {run_.step_seconds_[0] * 1e3:.0f} ms in float32, "
            f"{run_.step_seconds_[1] * 1e3:.0f} ms in bfloat16")
    which = "the page's defaults" if cfg == LORA else "issue 21's workload"
    workload = f"{cfg.batch}x{cfg.seq_len}, {which}"
    return comparison.result(
        f"lora: {cfg.steps} LoRA steps ({workload}), skills every {cfg.eval_every}",
        "plain PEFT LoRA loop, float32", goal="<= 0.8x",
        note=f"ours in {'bfloat16' if run_.bf16_ else 'float32'} (a {PROBE_SIZE}x{PROBE_SIZE} matmul: "
             f"{dtype.speedup:.2f}x bf16/fp32{step}){note}")


def run(spec: str | None = None) -> list[Result]:
    if spec is None and not (BUNDLED_DIR / "model.safetensors").is_file():  # any other failure is an error
        return [Result("lora: ours vs a plain PEFT loop", float("nan"), "s",
                       note="skipped: the bundled model is missing (python -m core.bundled.train)")]
    lm = load_model(spec)
    note = "" if lm.is_bundled else f" (on {spec}, not the bundled model)"
    task = make_task("changed_fact")
    suite = SkillSuite.build(lm, task)
    out = [_versus_peer(lm, task, suite, cfg, threads, note)
           for cfg in (LORA, ISSUE_WORKLOAD) for threads in THREADS]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the app's setting (ui/common/models.py)
    try:
        times, final = [], {}
        for _ in range(3):
            seconds, final = _default_run(lm, task)
            times.append(seconds)
    finally:
        torch.set_num_threads(before)
    skills = {m: r.history_[-1][1] for m, r in final.items()}
    out.append(Result(
        f"lora: the page's default run (LoRA + full, {LORA.steps} steps each)", statistics.median(times), "s",
        goal="< 20 s", repeats=len(times), threads=1,
        note=f"min-max {min(times):.1f}-{max(times):.1f} s; LoRA {final['lora'].seconds_:.1f} s, full "
             f"{final['full'].seconds_:.1f} s in the last run; facts accuracy after: LoRA "
             f"{skills['lora']['fact_accuracy']:.2f}, full {skills['full']['fact_accuracy']:.2f}; "
             f"load average {machine_context()['load_1min']}{note}"))
    return out
