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


def transformer_lens_twin(config):
    """A TransformerLens model with the shape of a transformers GPT2Config (random weights, eval
    mode), or None when TransformerLens is not installed (requirements-bench.txt brings it)."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        return None
    cfg = HookedTransformerConfig(
        n_layers=config.n_layer, d_model=config.n_embd, n_heads=config.n_head,
        d_head=config.n_embd // config.n_head, d_mlp=config.n_inner or 4 * config.n_embd,
        d_vocab=config.vocab_size, n_ctx=config.n_positions, act_fn="gelu_new",
        normalization_type="LN", device="cpu", seed=0,
    )
    return HookedTransformer(cfg).eval()
