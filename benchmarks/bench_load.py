"""Load: SESSIONS browsers at once, each opening every page (in its own shuffled order, ROUNDS times),
against one `streamlit run app.py` started for the purpose (offline, as the browser tests run it).

Measured: page time (navigation until Streamlit is idle: no running indicator for QUIET_S), its
p50 and p95 over all loads and per page; errors (exception boxes, and loads that failed or timed
out); the server's resident memory (VmRSS) before the sessions, at its peak (sampled every 0.25 s),
and after the sessions closed. The issue's goal: p50 under 4 s with 8 sessions, 0 errors.

Slow (minutes) and heavy (a Chromium per session): run it on its own,
    python -m benchmarks.bench_load [sessions] [rounds]
or through `python -m benchmarks load`, where LAB_LOAD_SESSIONS and LAB_LOAD_ROUNDS set the size
(default 8 and 1).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import Result
from tests.e2e.live_app import CHROMIUM, CHROMIUM_ARGS, resident_mb, serve_app
from ui.common.registry import TOPICS

QUIET_S = 1.5  # idle = no running indicator for this long
PAGE_TIMEOUT_S = 240
P50_GOAL_S = 4.0


def _pages() -> list[str]:
    return ["", *(t.url_path for t in TOPICS)]


async def _wait_idle(page) -> None:
    """Until the page's script has drawn its title and Streamlit has then been idle for QUIET_S (a
    fresh document shows no running indicator before its script starts, so idleness alone is not
    enough)."""
    await page.wait_for_selector('[data-testid="stMain"] h1', timeout=PAGE_TIMEOUT_S * 1000)
    deadline, quiet_since = time.monotonic() + PAGE_TIMEOUT_S, None
    while time.monotonic() < deadline:
        if await page.locator('[data-testid="stStatusWidget"]').count() > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the page kept running")


async def _session(browser, url: str, order: list[str], times: dict, errors: list) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        for path in order:
            start = time.monotonic()
            try:
                await page.goto(f"{url}/{path}", timeout=PAGE_TIMEOUT_S * 1000)
                await _wait_idle(page)
                boxes = page.locator('[data-testid="stException"]')
                for k in range(await boxes.count()):  # the type Streamlit shows (showErrorDetails)
                    shown = " ".join((await boxes.nth(k).inner_text()).split())[:120]
                    errors.append(f"/{path}: {shown}")
            except Exception as err:  # a load that failed or timed out counts as an error
                errors.append(f"/{path}: {type(err).__name__}")
            # the time until idle, less the quiet wait that proves it
            times.setdefault(path, []).append(time.monotonic() - start - QUIET_S)
    finally:
        await context.close()


async def _warm_up(url: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await _session(browser, url, [""], {}, [])
        finally:
            await browser.close()


async def _drive(url: str, sessions: int, rounds: int, seed: int) -> tuple[dict, list]:
    from playwright.async_api import async_playwright

    rng = random.Random(seed)
    orders = []
    for _ in range(sessions):
        order = []
        for _ in range(rounds):
            pages = _pages()
            rng.shuffle(pages)
            order += pages
        orders.append(order)
    times: dict[str, list[float]] = {}
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(_session(browser, url, o, times, errors) for o in orders))
        finally:
            await browser.close()
    return times, errors


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(sessions: int = 8, rounds: int = 1, seed: int = 0) -> dict:
    """Run the load once; return the figures as a dict (see the module docstring)."""
    peak = {"mb": 0.0}
    stop = threading.Event()
    log = Path(tempfile.gettempdir()) / "lab-bench-load-server.log"  # tracebacks of any error box
    with serve_app(log) as (url, pid):
        bare = resident_mb(pid)
        asyncio.run(_warm_up(url))
        before = resident_mb(pid)

        def sample():
            while not stop.is_set():
                try:
                    peak["mb"] = max(peak["mb"], resident_mb(pid))
                except OSError:
                    return
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        wall = time.monotonic()
        times, errors = asyncio.run(_drive(url, sessions, rounds, seed))
        wall = time.monotonic() - wall
        time.sleep(5)  # sessions closed: let the server let go of them
        after = resident_mb(pid)
        stop.set()
        sampler.join()
    every = [t for ts in times.values() for t in ts]
    return {
        "sessions": sessions, "rounds": rounds, "loads": len(every), "errors": errors, "wall_s": wall,
        "rss_bare_mb": bare, "rss_before_mb": before, "rss_after_mb": after,
        "rss_peak_mb": max(peak["mb"], before, after),
        "p50_s": statistics.median(every), "p95_s": _percentile(every, 0.95),
        "per_page": {p or "home": (statistics.median(ts), _percentile(ts, 0.95)) for p, ts in times.items()},
        "load_1min": os.getloadavg()[0],
    }


def results(figures: dict) -> list[Result]:
    size = f"{figures['sessions']} sessions x {figures['rounds']} round(s) x {len(_pages())} pages"
    rows = [
        Result(f"page time p50, {size}", figures["p50_s"], "s", goal=f"p50 < {P50_GOAL_S:g} s",
               note=f"p95 {figures['p95_s']:.1f} s; {figures['loads']} loads in {figures['wall_s']:.0f} s"),
        Result(f"errors, {size}", len(figures["errors"]), "errors", goal="0",
               note="; ".join(figures["errors"][:5])),
        Result(f"server RSS, {size}", figures["rss_peak_mb"], "MB (peak)",
               note=f"server up {figures['rss_bare_mb']:.0f} MB, after a warm-up visit "
                    f"{figures['rss_before_mb']:.0f} MB, after the sessions "
                    f"{figures['rss_after_mb']:.0f} MB"),
    ]
    for page, (p50, p95) in sorted(figures["per_page"].items()):
        rows.append(Result(f"page time /{page}, {size}", p50, "s (p50)", note=f"p95 {p95:.1f} s"))
    return rows


def run() -> list[Result]:
    sessions = int(os.environ.get("LAB_LOAD_SESSIONS", 8))
    rounds = int(os.environ.get("LAB_LOAD_ROUNDS", 1))
    return results(measure(sessions, rounds))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    figures = measure(*args)
    for r in results(figures):
        print(f"{r.name:70} {r.value:8.2f} {r.unit:10} {r.goal:14} {r.note}")
    print(f"load average at the end: {figures['load_1min']:.1f}")
