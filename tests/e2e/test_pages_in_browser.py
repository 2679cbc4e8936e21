"""Every page, in a real browser: it renders, the script finishes, and no exception box appears.

A screenshot of each page is saved under artifacts/screenshots/ (kept by CI as an artifact).
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.live_app import wait_until_idle
from ui.common.registry import TOPICS

PAGES = [("", "LLM Internals Lab")] + [(t.url_path, t.title) for t in TOPICS]  # home is the root


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("url_path", "title"), PAGES, ids=[p[0] or "home" for p in PAGES])
def test_page_renders_without_exceptions(browser, app_url, url_path, title, request):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{app_url}/{url_path}", timeout=60_000)
        wait_until_idle(page)
        # Streamlit scrolls inside its main container, so grow the window to the content's height
        height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 12000)})
        wait_until_idle(page, quiet_seconds=1.0)
        entry = request.node.callspec.params["app_url"]
        suffix = "" if entry == "local" else f"-{entry}"
        page.screenshot(path=str(SCREENSHOTS / f"{url_path or 'home'}{suffix}.png"), full_page=True)
        assert page.get_by_text("Page not found").count() == 0, "the URL does not open this page"
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert page.get_by_text(title).count() > 0, f"{title!r} not on the page"
        assert errors == [], errors
    finally:
        page.close()
