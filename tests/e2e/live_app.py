"""A real `streamlit run app.py` on a free local port, and a real Chromium to look at it.

Used by the browser tests and by the memory benchmark (which reads the server's resident memory
after every page has been opened).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(log_path: Path | None = None, start_timeout: float = 60, *, entry: str = "app.py",
              env: dict | None = None) -> Iterator[tuple[str, int]]:
    """Start the app offline from `entry` (app.py or the Cloud entry); yield (url, server pid)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", entry, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + start_timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("streamlit did not start; see its log") from None
                time.sleep(0.5)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
        if log_path:
            log.close()


def wait_until_idle(page, quiet_seconds: float = 1.5, timeout: float = 120) -> None:
    """Wait until Streamlit's 'running' indicator has stayed away for quiet_seconds."""
    page.wait_for_selector('[data-testid="stMain"]', timeout=timeout * 1000)
    deadline, quiet_since = time.time() + timeout, None
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since >= quiet_seconds:
            return
        time.sleep(0.2)
    raise TimeoutError("the page kept running")


def resident_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
