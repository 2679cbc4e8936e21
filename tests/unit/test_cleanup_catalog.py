"""core.models.catalog's reachability check: whatever the connection attempt raises in its background
thread means "not reachable", and nothing escapes the thread."""

from __future__ import annotations

import socket

from core.models import catalog


def test_a_connection_that_is_not_a_context_manager_means_unreachable(monkeypatch):
    """A create_connection that returns None made `with None:` raise TypeError in the thread (an
    unhandled thread exception); run with -W error::pytest.PytestUnhandledThreadExceptionWarning."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: None)
    catalog.forget_reachability()
    try:
        assert catalog._try_connect(("127.0.0.1", 9), timeout=2.0) is False
        assert catalog.hub_reachable(timeout=2.0) is False
    finally:
        catalog.forget_reachability()


def test_any_exception_in_the_attempt_means_unreachable(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a resolver bug")

    monkeypatch.setattr(socket, "create_connection", broken)
    assert catalog._try_connect(("127.0.0.1", 9), timeout=2.0) is False
