"""One way to cache a computation on a model: `@cache_on_model(...)` keys HookedLM arguments on
their spec.

A model cannot be hashed by value (hundreds of MB of weights), but its spec names it exactly: the
bundled model is "bundled", a hub model its id, and every private copy (a tuned model, a loaded
adapter) gets a spec of its own (HookedLM.copy, core.models.hooked_lm.derived_spec). So

    @cache_on_model(max_entries=8, show_spinner=False)
    def head_table(lm: HookedLM, layer: int) -> np.ndarray: ...

caches per (model, layer) with no `_lm, spec` pair at the call sites. Everything else about
st.cache_data is unchanged: arguments are hashed by value, results are pickled copies, so a caller
may change what it gets without touching the cache.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from core.models import HookedLM


def model_key(lm: HookedLM) -> str:
    """What a cached call sees of a model: its spec (unique per weights, see the module docstring)."""
    return lm.spec


def cache_on_model(func: Callable | None = None, **cache_kwargs):
    """st.cache_data that hashes HookedLM arguments by spec. Use bare or with st.cache_data's kwargs."""
    hash_funcs = {HookedLM: model_key, **cache_kwargs.pop("hash_funcs", {})}
    decorator = st.cache_data(hash_funcs=hash_funcs, **cache_kwargs)
    return decorator(func) if func is not None else decorator


def resource_on_model(func: Callable | None = None, **cache_kwargs):
    """st.cache_resource keyed on a HookedLM's spec: for big read-only results (activations, trained
    lenses) that every rerun and session shares instead of receiving a pickled copy. The caller must
    never change what it gets."""
    hash_funcs = {HookedLM: model_key, **cache_kwargs.pop("hash_funcs", {})}
    decorator = st.cache_resource(hash_funcs=hash_funcs, **cache_kwargs)
    return decorator(func) if func is not None else decorator


def resource_within_bytes(max_bytes: int, spinner: str | None = None):
    """Like resource_on_model (one shared, read-only result per model spec and arguments, for the
    whole server), but bounded by the bytes the results hold rather than by their count: a layer's
    activations are 17 MB on the bundled model and over 100 MB on GPT-2 small, so a count that suits
    one holds far too much of the other. Least recently used results go first, until what is kept
    fits max_bytes; the newest result always stays, whatever its size. A result's size is its
    `nbytes` (numpy arrays and torch tensors), 0 for anything without one.

    Two sessions asking for the same missing result at once may both compute it (the second one
    kept replaces the first); nothing waits on a lock while a model runs."""
    def decorate(func: Callable):
        store: OrderedDict[tuple, object] = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(func)
        def cached(lm: HookedLM, *args):
            key = (model_key(lm), *args)
            with lock:
                if key in store:
                    store.move_to_end(key)
                    return store[key]
            if spinner:
                with st.spinner(spinner):
                    value = func(lm, *args)
            else:
                value = func(lm, *args)
            with lock:
                store[key] = value
                store.move_to_end(key)
                held = sum(_size(v) for v in store.values())
                while held > max_bytes and len(store) > 1:
                    _, dropped = store.popitem(last=False)
                    held -= _size(dropped)
            return value

        cached.kept = lambda: list(store)  # the keys kept, least recently used first (for tests)
        cached.clear = store.clear
        return cached
    return decorate


def _size(value) -> int:
    return int(getattr(value, "nbytes", 0))  # numpy arrays and torch tensors both have nbytes
