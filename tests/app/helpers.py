"""AppTest helpers: open a page through app.py (so navigation and the sidebar run as in the app)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def open_page(path: str, *, timeout: float = 60, query: dict | None = None,
              state: dict | None = None, predict: bool = False) -> AppTest:
    """Run app.py, switch to `path` (e.g. "app_pages/xor.py"), and return the finished AppTest.

    query sets URL parameters (as a shared link would); state pre-sets session state. predict=False
    switches the "Predict before results" step off (as the sidebar switch does), so a test sees the
    result at once; tests of the prediction step pass predict=True.
    """
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    at.session_state["predict_first"] = predict
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    if path != "app_pages/home.py":
        at.switch_page(path)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """All markdown, captions, info and warning text on the page, joined (for value assertions)."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)
