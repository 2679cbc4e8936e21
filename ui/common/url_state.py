"""Values from a link that a page could not use, said once per page view in a small note.

Every control that defines an experiment is bound to the URL (`bind="query-params"`), so a link
reproduces a view. When a page opens, Streamlit seeds each bound widget from its URL parameter and
quietly drops what the widget cannot hold: `layer=999` on a 4-layer model, `coefficient=1e30` past a
slider's end, `NaN`, a word that is not one of the options. The widget falls back to its default and
the parameter leaves the URL without a word. A learner who followed a link then sees a different
experiment than the one shared, and cannot tell.

This module compares, generically for every bound widget, the raw query parameters at the start of
the run in which a page view begins with what the widgets hold at its end:

    raw = st.query_params at the start         (what the link said)
    held = the widget's value, written the way Streamlit writes it into the URL (its serializer)
    raw == held  -> the link's value is in use;  raw != held  -> "not valid here; used <held>"
    a parameter no widget binds (and none ever has in this server) -> "not a setting of this page"

Streamlit records each binding (QueryParams.get_binding_for_param) and each widget's serializer
(SessionState.get_widget_metadata); reading them after the page ran is the one hook that covers every
widget kind, including ones added later, with no change to any page.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from ui.common.page import escape_markdown

NOTE_KEY = "_link_note"  # (page view id, words) of the note for the current page view
READS_KEY = "_link_reads"  # parameters the page read itself this run (see reads_param)
VIEW_KEY = "_link_view"  # the page the previous run of this session showed
PENDING_KEY = "_link_pending"  # (view, the link's parameters) until a run of that view finishes
DEFER_KEY = "_link_defer"  # True in a run whose page held its controls back (a prediction to make first)
MAX_SHOWN_CHARS = 40  # a value is cut to this many characters in the note
MAX_ITEMS = 6  # values listed one by one; more are counted

_known_lock = threading.Lock()
_known_keys: set[str] = set()  # every parameter a widget has bound in this server process


@dataclass(frozen=True)
class LinkIssue:
    """One value from a link that the page did not use as written."""

    key: str
    raw: list[str]  # what the link said (a repeated parameter has several values)
    used: list[str] | None  # the value in use instead, as the URL writes it; None: nothing reads it
    kind: Literal["replaced", "unknown"]


def url_form(value: Any, value_type: str) -> list[str]:
    """A widget value written as URL strings, the way Streamlit writes bound values."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        if isinstance(v, bool):
            out.append(str(v).lower())
        elif isinstance(v, float) and math.isfinite(v) and v == int(v):
            out.append(str(int(v)))
        else:
            out.append("" if v is None else str(v))
    return out


def _same(raw: str, held: str) -> bool:
    if raw == held:
        return True
    if raw.strip().lower() == held.lower() and held in ("true", "false"):
        return True
    try:
        a, b = float(raw), float(held)
    except ValueError:
        return False
    return math.isfinite(a) and a == b  # "1.50" is 1.5; "nan" never equals anything


def same_values(raw: list[str], held: list[str]) -> bool:
    """Whether the link's values mean what the widget holds (spelling aside: 1.50 = 1.5, TRUE = true)."""
    raw = [r for r in raw if r != ""] if len(raw) > 1 else raw
    if len(raw) != len(held):
        return False
    return all(_same(r, h) for r, h in zip(raw, held, strict=True))


def link_issues(raw: dict[str, list[str]], held: dict[str, list[str]], known: Iterable[str],
                ignore: Iterable[str] = ()) -> list[LinkIssue]:
    """The issues of one page view. raw: the link's parameters; held: the URL form of every bound
    widget's value at the end of the run; known: parameters that some widget binds somewhere."""
    known, ignore = set(known), set(ignore)
    issues = []
    for key, values in raw.items():
        if key in ignore:
            continue
        if key in held:
            if not same_values(values, held[key]):
                issues.append(LinkIssue(key, values, held[key], "replaced"))
        elif key not in known:
            issues.append(LinkIssue(key, values, None, "unknown"))
    return issues


def _cut(text: str) -> str:
    text = text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"
    return escape_markdown(text) if text else "(empty)"


def _values(values: list[str]) -> str:
    return ", ".join(_cut(v) for v in values) if values else "(empty)"


def describe(issues: list[LinkIssue]) -> str:
    """The note's words: which values from the link were not valid, and what was used instead."""
    parts = []
    for issue in issues[:MAX_ITEMS]:
        if issue.kind == "unknown":
            parts.append(f"**{_cut(issue.key)}** = {_values(issue.raw)} is not a setting of this page "
                         "(ignored)")
        else:
            parts.append(f"**{_cut(issue.key)}** = {_values(issue.raw)} is not valid here; used "
                         f"{_values(issue.used or [])}")
    more = len(issues) - MAX_ITEMS
    tail = f"; and {more} more" if more > 0 else ""
    return "Some values in the link you opened could not be used: " + "; ".join(parts) + tail + "."


def _held_values(keys: Iterable[str]) -> dict[str, list[str]]:
    """The URL form of the value each bound widget holds now, for the given parameter keys."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return {}
    held = {}
    with ctx.session_state.query_params() as qp:
        bindings = {k: qp.get_binding_for_param(k) for k in keys}
        with _known_lock:
            _known_keys.update(getattr(qp, "_bindings_by_param", {}).keys())
    state = getattr(ctx.session_state, "_state", None)
    for key, binding in bindings.items():
        if binding is None or state is None:
            continue
        meta = state.get_widget_metadata(binding.widget_id)
        if meta is None or key not in st.session_state:
            continue
        try:
            serialized = meta.serializer(st.session_state[key])
        except Exception:  # a serializer that cannot write this value: compare what we can
            serialized = st.session_state[key]
        held[key] = url_form(serialized, meta.value_type)
    return held


def defer_check() -> None:
    """Say that this run drew only part of the page (the prediction step holds the result back), so
    the link's values are checked in the first run that draws the whole page. Streamlit keeps a
    link's value in the URL until the widget it belongs to is drawn, so nothing is lost meanwhile."""
    st.session_state[DEFER_KEY] = True


def reads_param(*keys: str) -> None:
    """Say that this page reads these URL parameters itself (st.query_params, not a bound widget),
    e.g. an old parameter it translates, so the note does not call them "not a setting"."""
    st.session_state.setdefault(READS_KEY, set()).update(keys)


class LinkCheck:
    """Open with begin() before any widget exists, finish() after the page ran (see app.py)."""

    def __init__(self, view: str, ignore: Iterable[str] = ()):
        self.view = view
        self.ignore = tuple(ignore)
        if st.session_state.get(VIEW_KEY) != view:
            # The link's values, kept until a run of this view finishes: the first run may be cut
            # short by a rerun (a long page, a widget the browser re-sends), and the next run would
            # no longer see the values Streamlit has already dropped from the URL.
            st.session_state[PENDING_KEY] = (view, {k: st.query_params.get_all(k) for k in st.query_params})
        st.session_state[VIEW_KEY] = view
        st.session_state[READS_KEY] = set()
        st.session_state[DEFER_KEY] = False
        self.slot = st.empty()

    def finish(self) -> None:
        pending = st.session_state.get(PENDING_KEY)
        deferred = st.session_state.get(DEFER_KEY, False)
        if pending is not None and pending[0] == self.view and not deferred:
            raw = pending[1]
            held = _held_values(raw)  # also records this run's bindings as known
            with _known_lock:
                known = set(_known_keys)
            ignore = set(self.ignore) | st.session_state.get(READS_KEY, set())
            issues = link_issues(raw, held, known, ignore)
            st.session_state[NOTE_KEY] = (self.view, describe(issues)) if issues else None
            del st.session_state[PENDING_KEY]
        note = st.session_state.get(NOTE_KEY)
        if note and note[0] == self.view:
            self.slot.caption(f":material/link_off: {note[1]}")


def guard_url_seeding() -> None:
    """Make a URL value that a widget's deserializer chokes on count as invalid, like any other.

    Streamlit 1.67 seeds a bound widget from the URL inside a try that catches ValueError, TypeError
    and IndexError only; `?seed=inf` on an integer number_input raises OverflowError there
    (int(float("inf"))), which ends the page in a traceback, in the browser too. A link is untrusted
    input, so whatever parsing it raises means "not a valid value": the widget keeps its default and
    the parameter leaves the URL, as for any invalid value (and the note above says so). Idempotent.
    """
    from streamlit.runtime.state.session_state import SessionState

    original = SessionState._seed_widget_from_url
    if getattr(original, "_lab_guarded", False):
        return

    def seed_or_reject(self, metadata, user_key, widget_id, url_value):
        try:
            return original(self, metadata, user_key, widget_id, url_value)
        except Exception:  # noqa: BLE001 - any failure to read an untrusted value rejects it
            self._clear_url_param(user_key)
            return False

    seed_or_reject._lab_guarded = True
    SessionState._seed_widget_from_url = seed_or_reject


guard_url_seeding()


def begin(view: str, ignore: Iterable[str] = ("model",)) -> LinkCheck:
    """Start checking this run's link values; `ignore` lists parameters handled elsewhere (the
    sidebar says itself when a link's ?model= cannot be used)."""
    return LinkCheck(view, ignore)
