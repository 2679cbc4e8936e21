"""The server-wide store of tuned lenses (ui.residual.compute) is bounded: at most KEEP_LENSES, the
oldest evicted first, and safe to fill from many sessions' threads at once."""

from __future__ import annotations

import threading

import pytest

from ui.residual import compute


def _record(key: tuple) -> compute.TunedRecord:
    return compute.TunedRecord(lens=None, key=key, source="test", kl=None, n_train=0, n_held=0, seconds=0.0)


@pytest.fixture(autouse=True)
def empty_store():
    compute._lenses().clear()
    yield
    compute._lenses().clear()


def test_the_store_keeps_at_most_keep_lenses_and_evicts_the_oldest_first():
    n = compute.KEEP_LENSES
    assert 1 <= n <= 8  # small: each lens holds a d_model x d_model matrix per layer
    for i in range(n + 2):
        compute.keep(_record(("model", i)))
    assert list(compute._lenses()) == [("model", i) for i in range(2, n + 2)]  # 0 and 1 went first
    assert compute.trained(None, ("model", 0)) is None
    assert compute.trained(None, ("model", n + 1)).key == ("model", n + 1)


def test_a_lens_trained_again_replaces_its_old_one_and_becomes_the_newest():
    n = compute.KEEP_LENSES
    for i in range(n):
        compute.keep(_record(("model", i)))
    again = _record(("model", 0))
    compute.keep(again)  # the store is full, but this key is in it: nothing else is evicted
    assert list(compute._lenses()) == [("model", i) for i in range(1, n)] + [("model", 0)]
    assert compute.trained(None, ("model", 0)) is again
    compute.keep(_record(("model", "new")))
    assert ("model", 1) not in compute._lenses()  # now the oldest is the next to go
    assert len(compute._lenses()) == n


def test_many_sessions_filling_the_store_at_once_never_pass_the_bound():
    barrier = threading.Barrier(8)

    def fill(t: int) -> None:
        barrier.wait()
        for i in range(200):
            compute.keep(_record((t, i)))

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    store = compute._lenses()
    assert len(store) == compute.KEEP_LENSES
    assert all(key[1] >= 200 - compute.KEEP_LENSES for key in store)  # only late entries survive
