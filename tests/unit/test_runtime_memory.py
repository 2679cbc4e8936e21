"""ui.common.runtime.release_free_memory: the C heap's free pages go back to the OS after a run."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import pytest

from ui.common import runtime

ROOT = Path(__file__).resolve().parents[2]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon")


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_free_heap_memory_goes_back_to_the_os():
    from core.models.hooked_lm import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse()  # the app's thresholds: 1 MB blocks come from the heap, and stay
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1 << 20) for _ in range(100)]
    for b in blocks:
        ctypes.memset(b, 1, 1 << 20)  # resident
    keep = libc.malloc(64)  # above them, so the free blocks are not at the top of the heap
    for b in blocks:
        libc.free(b)
    before = _rss_anon_mb()
    assert runtime.release_free_memory() is True
    after = _rss_anon_mb()
    libc.free(keep)
    assert before - after > 50, (before, after)


def test_trim_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(runtime, "_trim", None)
    monkeypatch.setenv("LAB_MALLOC_TRIM", "0")
    assert runtime.release_free_memory() is False
    monkeypatch.setattr(runtime, "_trim", None)  # the next call looks again
