"""Resident memory of the running app after loading the bundled model and opening every page.

Streamlit Community Cloud gives an app 690 MB to 2.7 GB; the goal is under 800 MB so GPT-2 still
fits beside it. Measured on the real server process (`streamlit run app.py`), opened page by page in
headless Chromium.
"""

from __future__ import annotations

from benchmarks import Result
from tests.e2e.live_app import CHROMIUM, CHROMIUM_ARGS, resident_mb, serve_app, wait_until_idle
from ui.common.registry import TOPICS


def run() -> list[Result]:
    from playwright.sync_api import sync_playwright

    with serve_app() as (url, pid), sync_playwright() as p:
        started = resident_mb(pid)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path in [""] + [t.url_path for t in TOPICS]:
            page.goto(f"{url}/{path}", timeout=120_000)
            wait_until_idle(page, timeout=300)
        after = resident_mb(pid)
        browser.close()
    return [Result(f"app resident memory after opening {len(TOPICS) + 1} pages", after, "MB",
                   goal="< 800 MB", note=f"at start: {started:.0f} MB")]
