"""Process-wide settings of the running app that every page benefits from.

After every run, fragment runs included, Streamlit does a full garbage collection
(runner.postScriptGC). With torch, transformers and scikit-learn imported that walks about 490,000
objects, and it took 0.7 to 1.2 s per run on this 2-core machine: most of the time between frames of
an animation, and a large share of a quick page's rerun. `freeze_long_lived` moves what exists after
the first run (the imports, the shared bundled model) out of that walk, once per process; a
collection then takes about a millisecond. Later garbage is collected as before.

`release_free_memory` hands the C heap's free pages back to the OS after each run. The malloc tuning
of core.models.hooked_lm keeps freed activations for reuse within a run (a forward pass that keeps
every activation then does not page-fault fresh memory), and glibc keeps what was freed in the
middle of a heap, and in each thread's arena, until the process ends: with GPT-2 small's shape,
opening every page left 400 MB of free heap resident (1.72 GB; 1.32 GB after a trim per run). A trim
between runs keeps the reuse inside a run and returns the rest. Set LAB_MALLOC_TRIM=0 to skip it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading

_lock = threading.Lock()
_frozen = False


def freeze_long_lived() -> None:
    """gc.freeze() once per process (see the module docstring)."""
    global _frozen
    with _lock:
        if not _frozen:
            gc.collect()  # what is garbage now is freed, not frozen
            gc.freeze()
            _frozen = True


_trim = None


def release_free_memory() -> bool:
    """malloc_trim(0): give the free pages of every malloc arena back to the OS (glibc only; elsewhere
    nothing to do). True if memory was released. Cheap: it walks the free chunks, not the heap."""
    global _trim
    if _trim is None:
        _trim = False
        if os.environ.get("LAB_MALLOC_TRIM", "1").strip() != "0":
            try:
                _trim = ctypes.CDLL(None).malloc_trim
                _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc (macOS, Windows)
                _trim = False
    return bool(_trim and _trim(0))
