"""Fixtures for the browser tier: the live app and Debian's chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.live_app import CHROMIUM, CHROMIUM_ARGS, ROOT, serve_app

ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="session")
def app_url():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with serve_app(ARTIFACTS / "streamlit.log") as (url, _pid):
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
