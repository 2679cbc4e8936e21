"""Fixtures for the browser tier: the live app and Debian's chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.live_app import CHROMIUM, CHROMIUM_ARGS, ROOT, serve_app

ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"


# Two ways in: the app as a local user starts it, with predictions switched off so every page shows its
# result (and the screenshots do); and the Community Cloud entry as a visitor meets it, with the
# prediction step on, which must render on every page too.
ENTRIES = {"local": ("app.py", {"LAB_PREDICT_FIRST": "0"}), "cloud": ("cloud/streamlit_app.py", {})}


@pytest.fixture(scope="session", params=list(ENTRIES))
def app_url(request):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    entry, env = ENTRIES[request.param]
    with serve_app(ARTIFACTS / f"streamlit-{request.param}.log", entry=entry, env=env) as (url, _pid):
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
