"""Speed and memory figures, measured against a named peer in the same run where one exists.

Each `benchmarks/bench_*.py` module has `run() -> list[Result]`. `python -m benchmarks` runs them
all (or those named on the command line: `python -m benchmarks xor models`), prints one table and
writes benchmarks/results.json.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Result:
    name: str  # what was measured
    value: float  # our figure
    unit: str  # "s", "ms", "MB", "acts/s", ...
    peer: str = ""  # the named peer, if any
    peer_value: float | None = None
    goal: str = ""  # the goal from the issue, in words ("<= 0.6x TransformerLens")
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / peer (for times: below 1 means we are faster)."""
        if self.peer_value in (None, 0):
            return None
        return self.value / self.peer_value

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def best_of(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time of `repeat` calls, in seconds (the least disturbed by other work)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
