"""Which number format makes matrix products fastest on this CPU: measured, never assumed.

bfloat16 keeps float32's range with 8 bits of mantissa (about 3 significant digits). On a CPU with
AMX tiles a bfloat16 matmul ran about 6x faster than float32; on one with AVX-512 BF16 but no AMX it
ran 1.75x *slower*, because the conversion costs more than the narrower multiply saves. So the lab
times one representative matmul in both formats, on this CPU and at the current thread count, the
first time a trainer asks, and keeps the answer for the process. Trainers that offer bfloat16
(autocast: weights and optimizer state stay float32) use it only when it measured faster.

A CPU without AMX can be had on one with it: PyTorch's bfloat16 products go through oneDNN, which
uses no instruction set above ONEDNN_MAX_CPU_ISA when that is set before torch loads.
`ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16` leaves AVX-512 BF16 and takes AMX away (on this project's
machine the probe then measured bfloat16 at 0.6-0.7x float32, where it was 3.5-7x): that is how the
benchmarks measure "a CPU without AMX" (benchmarks/bench_sae.py), and the capability line says so.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
PROBE_SIZE = 512  # [512, 512] @ [512, 512]: the size of an SAE or LoRA batch matmul on this app
PROBE_REPEATS = 7
MIN_SPEEDUP = 1.15  # bfloat16 must win clearly: rounding costs accuracy, a tie is not worth it
# A trainer's own step, timed in both formats, is the workload itself rather than a stand-in for it,
# so its margin only has to cover the timing's noise: the bundled model's LoRA step measured 1.13-1.19x
# in bfloat16 on 1 thread (whole steps 1.17-1.20x) and 0.99-1.08x on 2. At 1.15 the 1-thread choice
# flipped from run to run of the same benchmark, and with it the run's time by 10-15%.
MIN_STEP_SPEEDUP = 1.10


def cpu_capabilities() -> dict[str, bool]:
    """Which of the matmul-relevant instruction sets this CPU reports (Linux /proc/cpuinfo)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return {f: f in flags for f in CPU_FLAGS}


ISA_CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"  # oneDNN's ceiling on the instruction sets it uses


def capability_summary() -> str:
    """One line for a table or a page: "AVX2, AVX-512, AVX-512 BF16, AMX" (what is present), plus
    oneDNN's ceiling when one is set: "..., AMX; oneDNN capped at AVX512_CORE_BF16"."""
    names = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX"}
    present = [names[f] for f, on in cpu_capabilities().items() if on]
    line = ", ".join(present) or "none of AVX2 / AVX-512 / AMX"
    cap = os.environ.get(ISA_CAP_VARIABLE, "").strip()
    return f"{line}; oneDNN capped at {cap}" if cap and cap.upper() != "ALL" else line


@dataclass(frozen=True)
class DtypeChoice:
    dtype: torch.dtype  # the one to compute matmuls in
    fp32_gflops: float
    bf16_gflops: float
    threads: int
    cpu: str  # capability_summary()

    @property
    def speedup(self) -> float:
        """bfloat16 throughput / float32 throughput on this CPU (above 1: bfloat16 is faster)."""
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops else 0.0

    @property
    def use_bf16(self) -> bool:
        return self.dtype == torch.bfloat16

    def reason(self) -> str:
        """A sentence for the page: which format, and the measurement behind it."""
        chosen = "bfloat16" if self.use_bf16 else "float32"
        return (f"Matrix products run in {chosen}: on this CPU ({self.cpu}), {self.threads} thread(s), "
                f"a {PROBE_SIZE}x{PROBE_SIZE} matmul measured {self.bf16_gflops:.0f} GFLOP/s in "
                f"bfloat16 and {self.fp32_gflops:.0f} in float32 ({self.speedup:.2f}x).")


def _gflops(dtype: torch.dtype, size: int, repeats: int) -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dtype)
    b = torch.randn(size, size, generator=gen).to(dtype)
    for _ in range(2):  # warm up: first calls pick kernels and fault in pages
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / sorted(times)[len(times) // 2] / 1e9  # the median


@functools.lru_cache(maxsize=8)
def _measure(threads: int) -> DtypeChoice:
    fp32 = _gflops(torch.float32, PROBE_SIZE, PROBE_REPEATS)
    bf16 = _gflops(torch.bfloat16, PROBE_SIZE, PROBE_REPEATS)
    dtype = torch.bfloat16 if bf16 >= MIN_SPEEDUP * fp32 else torch.float32
    return DtypeChoice(dtype, fp32, bf16, threads, capability_summary())


def fastest_matmul_dtype() -> DtypeChoice:
    """The measured choice for the current torch thread count (measured once per process and count)."""
    return _measure(torch.get_num_threads())


def autocast_bf16(setting: bool | None, workload: Callable[[], tuple[float, float]] | None = None) -> bool:
    """Resolve a trainer's bf16 setting: True/False as asked; None means "whatever measured faster".

    The matmul probe can favour bfloat16 while a trainer's real step, whose small matrices spend
    their time in conversions and element-wise work, may not: on a CPU where the probe said 6-7x, the
    bundled model's LoRA step took about 27 ms in bfloat16 against 32 ms in float32 on one thread, and
    about 19-20 ms in both on two (it was 10-25% slower in bfloat16 before the attention ran in float32
    while training, core.models.hooked_attention). A trainer that can time its own step
    passes `workload() -> (float32 seconds, bfloat16 seconds)`; it is called only when the probe
    favours bfloat16, and bfloat16 is kept only if the step is MIN_STEP_SPEEDUP times faster too."""
    if setting is not None:
        return bool(setting)
    if not fastest_matmul_dtype().use_bf16:
        return False
    if workload is None:
        return True
    fp32_s, bf16_s = workload()
    return bf16_s * MIN_STEP_SPEEDUP <= fp32_s
