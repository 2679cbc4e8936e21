"""Process-wide settings of the running app that every page benefits from.

After every run, fragment runs included, Streamlit does a full garbage collection
(runner.postScriptGC). With torch, transformers and scikit-learn imported that walks about 490,000
objects, and it took 0.7 to 1.2 s per run on this 2-core machine: most of the time between frames of
an animation, and a large share of a quick page's rerun. `freeze_long_lived` moves what exists after
the first run (the imports, the shared bundled model) out of that walk, once per process; a
collection then takes about a millisecond. Later garbage is collected as before.
"""

from __future__ import annotations

import gc
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
