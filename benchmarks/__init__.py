"""Speed and memory figures, measured against a named peer in the same run where one exists.

Method: ours and the peer run interleaved (ours, peer, peer, ours, ...) on the same torch thread
count, at least 5 repeats; a figure is the median, a ratio is the median of the per-repeat ratios,
shown with its min-max spread, the CPU's capability (AVX2 / AVX-512 / AMX) and the load average.

Each `benchmarks/bench_*.py` module has `run() -> list[Result]`. `python -m benchmarks` runs them
all (or those named on the command line: `python -m benchmarks xor models`), prints one table and
writes benchmarks/results.json.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field


def machine_context() -> dict:
    """What a figure depends on: the CPU's matmul capabilities, core count and load when measured."""
    from core.models.dtype import capability_summary

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {"cpu": capability_summary(), "cores": os.cpu_count(), "load_1min": round(load, 2)}


@dataclass(frozen=True)
class Result:
    name: str  # what was measured
    value: float  # our figure (the median of the repeats)
    unit: str  # "s", "ms", "MB", "acts/s", ...
    peer: str = ""  # the named peer, if any
    peer_value: float | None = None  # the peer's median, measured interleaved with ours
    goal: str = ""  # the goal from the issue, in words ("<= 0.6x TransformerLens")
    note: str = ""
    ratio_spread: tuple[float, float] | None = None  # min and max of the per-repeat ratios
    repeats: int = 1
    threads: int | None = None  # torch threads for ours and the peer alike
    context: dict = field(default_factory=machine_context)  # CPU capability and load when measured

    @property
    def ratio(self) -> float | None:
        """The median of the per-repeat ratios ours / peer when measured interleaved; else the ratio
        of the two figures. For times, below 1 means we are faster."""
        if self.ratio_median is not None:
            return self.ratio_median
        if self.peer_value in (None, 0):
            return None
        return self.value / self.peer_value

    ratio_median: float | None = None

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


@dataclass(frozen=True)
class Comparison:
    """Ours and a peer timed alternately (ours, peer, ours, peer, ...), on the same thread count."""
    ours: list[float]  # seconds per repeat
    peer: list[float]
    threads: int

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def peer_median(self) -> float:
        return statistics.median(self.peer)

    @property
    def ratios(self) -> list[float]:
        return [o / p for o, p in zip(self.ours, self.peer, strict=True)]

    @property
    def ratio_median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.ratios), max(self.ratios)

    def result(self, name: str, peer: str, *, unit: str = "s", scale: float = 1.0, goal: str = "",
               note: str = "") -> Result:
        """A Result with our and the peer's medians (times scale, e.g. 1e3 for ms) and the ratio."""
        return Result(name, self.ours_median * scale, unit, peer=peer, peer_value=self.peer_median * scale,
                      goal=goal, note=note, ratio_spread=self.spread, repeats=len(self.ours),
                      threads=self.threads, ratio_median=self.ratio_median)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(ours, peer, *, repeats: int = 5, warmup: int = 1, threads: int = 1) -> Comparison:
    """Time ours and peer alternately `repeats` times each, both on `threads` torch threads.

    Alternating spreads any slow spell of the machine over both sides; the per-pair ratios give a
    median and a min-max spread that say how much to trust the figure."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            ours()
            peer()
        o, p = [], []
        for i in range(repeats):
            if i % 2 == 0:  # alternate who goes first, so neither always runs on a warm cache
                o.append(timed(ours))
                p.append(timed(peer))
            else:
                p.append(timed(peer))
                o.append(timed(ours))
        return Comparison(o, p, threads)
    finally:
        torch.set_num_threads(before)


def in_child_process(target: str, env: dict[str, str]) -> list[Result]:
    """Run `target` ("benchmarks.bench_sae:without_amx", a function returning list[Result]) in a fresh
    Python process with `env` added to this one's, and return its Results. For settings that only
    take effect before torch loads, such as oneDNN's instruction-set ceiling
    (core.models.dtype.ISA_CAP_VARIABLE). Each Result's context is the child's, so its CPU line
    shows the setting."""
    import json
    import subprocess
    import sys
    from dataclasses import fields

    proc = subprocess.run([sys.executable, "-m", "benchmarks.child", target], env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{target} failed in its child process:\n{proc.stderr[-3000:]}")
    names = {f.name for f in fields(Result)}
    rows = json.loads(proc.stdout.strip().splitlines()[-1])  # the child prints its results last
    kept = [{k: v for k, v in row.items() if k in names} for row in rows]
    return [Result(**{**row, "ratio_spread": tuple(row["ratio_spread"]) if row.get("ratio_spread") else None})
            for row in kept]


def median_of(fn, repeat: int = 5, warmup: int = 1) -> tuple[float, tuple[float, float]]:
    """(median, (min, max)) wall time of `repeat` calls, in seconds, for a figure with no peer."""
    for _ in range(warmup):
        fn()
    times = [timed(fn) for _ in range(repeat)]
    return statistics.median(times), (min(times), max(times))


def best_of(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `repeat` calls (kept under its old name for existing modules)."""
    return median_of(fn, repeat, warmup)[0]


def transformer_lens_twin(config):
    """A TransformerLens model with the shape and activation of a transformers GPT2Config (random
    weights, eval mode), or None when TransformerLens is not installed (requirements-bench.txt
    brings it)."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        return None
    cfg = HookedTransformerConfig(
        n_layers=config.n_layer, d_model=config.n_embd, n_heads=config.n_head,
        d_head=config.n_embd // config.n_head, d_mlp=config.n_inner or 4 * config.n_embd,
        d_vocab=config.vocab_size, n_ctx=config.n_positions, act_fn=config.activation_function,
        normalization_type="LN", device="cpu", seed=0,
    )
    return HookedTransformer(cfg).eval()
