"""ui.common.cache.resource_within_bytes: shared results kept by model spec and arguments, bounded by
the bytes they hold, least recently used out first, the newest always kept."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from core.models import HookedLM
from ui.common.cache import resource_within_bytes


def _lm(spec: str):
    lm = object.__new__(HookedLM)  # model_key reads only the spec
    lm.spec = spec
    return lm


def _store(max_bytes: int):
    calls = []

    @resource_within_bytes(max_bytes)
    def acts(lm, layer: int, n: int):
        calls.append((lm.spec, layer))
        return np.zeros(n, dtype=np.uint8)  # n bytes

    return acts, calls


def test_a_kept_result_is_shared_per_spec_and_arguments():
    acts, calls = _store(1_000)
    a = acts(_lm("bundled"), 0, 100)
    assert acts(_lm("bundled"), 0, 100) is a  # the same object, not a copy
    acts(_lm("gpt2"), 0, 100)  # another model: its own result
    acts(_lm("bundled"), 1, 100)
    assert calls == [("bundled", 0), ("gpt2", 0), ("bundled", 1)]


def test_least_recently_used_go_first_until_the_rest_fits():
    acts, calls = _store(250)
    lm = _lm("m")
    acts(lm, 0, 100)
    acts(lm, 1, 100)
    acts(lm, 0, 100)  # used again: now the most recent
    acts(lm, 2, 100)  # 300 bytes > 250: layer 1, the least recently used, goes
    assert acts.kept() == [("m", 0, 100), ("m", 2, 100)]
    acts(lm, 1, 100)
    assert calls == [("m", 0), ("m", 1), ("m", 2), ("m", 1)]  # computed again after eviction


def test_the_newest_result_stays_even_when_it_alone_is_over_the_budget():
    acts, _ = _store(250)
    lm = _lm("m")
    acts(lm, 0, 100)
    acts(lm, 1, 1_000)
    assert acts.kept() == [("m", 1, 1_000)]


def test_tensors_count_their_bytes_and_other_values_count_nothing():
    @resource_within_bytes(100)
    def value(lm, kind: str):
        return torch.zeros(20) if kind.startswith("tensor") else SimpleNamespace(kind=kind)  # 80 or 0 bytes

    lm = _lm("m")
    for kind in ("tensor1", "a", "b"):
        value(lm, kind)
    assert [k[1] for k in value.kept()] == ["tensor1", "a", "b"]  # 80 bytes in all
    value(lm, "tensor2")  # 160 bytes: the oldest goes (the first tensor), then 80 bytes fit
    assert [k[1] for k in value.kept()] == ["a", "b", "tensor2"]
