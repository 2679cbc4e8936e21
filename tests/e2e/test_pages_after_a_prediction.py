"""Every page on the Cloud entry, where a visitor is asked to predict first: after "Skip this time" the
result the page held back is drawn, and it draws without an exception.

The plain page test (test_pages_in_browser.py) stops at the prediction box on this entry, so whatever
a page draws after it went unchecked there: the patching page's links to other pages once raised
StreamlitPageNotFoundError on this entry only (a relative script path, resolved against cloud/).
"""

from __future__ import annotations

import pytest

from tests.e2e.live_app import wait_until_idle
from ui.common.registry import TOPICS

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
@pytest.mark.parametrize("app_url", ["cloud"], indirect=True)
@pytest.mark.parametrize("url_path", [t.url_path for t in TOPICS])
def test_skipping_the_prediction_shows_the_result_without_errors(browser, app_url, url_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{app_url}/{url_path}", timeout=60_000)
        wait_until_idle(page, timeout=240)
        skip = page.get_by_role("button", name="Skip this time")
        if skip.count() == 0:
            pytest.skip("this page asks for no prediction before its first result")
        asked = skip.count()
        skip.first.click()
        wait_until_idle(page, timeout=240)
        assert page.get_by_role("button", name="Skip this time").count() < asked, "the skip was not taken"
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert errors == [], errors
    finally:
        page.close()
