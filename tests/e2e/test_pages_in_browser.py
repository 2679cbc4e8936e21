"""Every page, in a real browser: it renders, the script finishes, and no exception box appears.

A screenshot of each page is saved under artifacts/screenshots/ (kept by CI as an artifact).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import SCREENSHOTS
from ui.registry import TOPICS

PAGES = [("home", "LLM Internals Lab")] + [(t.url_path, t.title) for t in TOPICS]


def wait_until_idle(page, quiet_seconds: float = 1.5, timeout: float = 120) -> None:
    """Wait until Streamlit's 'running' indicator has stayed away for quiet_seconds."""
    page.wait_for_selector('[data-testid="stMain"]', timeout=timeout * 1000)
    deadline, quiet_since = time.time() + timeout, None
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since >= quiet_seconds:
            return
        time.sleep(0.2)
    raise TimeoutError("the page kept running")


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("url_path", "title"), PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_without_exceptions(browser, app_url, url_path, title):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{app_url}/{url_path}", timeout=60_000)
        wait_until_idle(page)
        page.screenshot(path=str(SCREENSHOTS / f"{url_path}.png"), full_page=True)
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert page.get_by_text(title).count() > 0, f"{title!r} not on the page"
        assert errors == [], errors
    finally:
        page.close()
