"""ui.steering.compute.bundled_pairs is a server-wide st.cache_data: it is bounded."""

from __future__ import annotations

from core.interp.steering import targets as T
from ui.steering import compute


def test_the_bundled_pairs_cache_is_bounded_and_evicts():
    assert compute.bundled_pairs._info.max_entries == compute.PAIR_CACHE_ENTRIES
    assert len(T.BUNDLED_CONCEPTS) <= compute.PAIR_CACHE_ENTRIES  # every real concept stays cached


def test_past_the_bound_the_first_concept_is_computed_again(monkeypatch):
    calls: list[str] = []

    def fake(concept: str) -> list[tuple[str, str]]:
        calls.append(concept)
        return [(f"{concept} +", f"{concept} -")]

    monkeypatch.setattr(T, "bundled_pairs", fake)
    compute.bundled_pairs.clear()
    try:
        assert compute.bundled_pairs("c0") == (("c0 +", "c0 -"),)
        compute.bundled_pairs("c0")
        assert calls == ["c0"]  # cached
        for i in range(1, compute.PAIR_CACHE_ENTRIES + 1):
            compute.bundled_pairs(f"c{i}")
        compute.bundled_pairs("c0")  # evicted by the bound: computed again
        assert calls.count("c0") == 2
    finally:
        compute.bundled_pairs.clear()
