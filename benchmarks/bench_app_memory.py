"""Resident memory of the running app after opening every page, as a Community Cloud visitor would.

Streamlit Community Cloud gives an app 690 MB to 2.7 GB. Measured on the real server process started
from the Cloud entry (`streamlit run cloud/streamlit_app.py`), each page opened in headless Chromium
and left to finish, twice: on the bundled model (goal < 800 MB), and on a model of GPT-2 small's
shape (124M parameters, random weights saved to a temporary folder the server may load from; goal
< 1.5 GB). Pages that train (SAE, LoRA, the small transformer) are opened, not run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

from benchmarks import Result
from tests.e2e.live_app import CHROMIUM, CHROMIUM_ARGS, resident_mb, serve_app, wait_until_idle
from ui.common.registry import TOPICS

ENTRY = "cloud/streamlit_app.py"


def _gpt2_small_folder(root: Path) -> Path:
    """A GPT-2-small-shaped model (random weights) with the bundled tokenizer's files, saved as a
    hub model would be."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from core.models.loading import BUNDLED_DIR

    folder = root / "gpt2-small-shape"
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_DIR)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=max(len(tokenizer), 50257), n_positions=1024, n_embd=768, n_layer=12,
                        n_head=12)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _open_every_page(url: str, query: str, pid: int) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        started = resident_mb(pid)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path in [""] + [t.url_path for t in TOPICS]:
            page.goto(f"{url}/{path}{query}", timeout=300_000)
            wait_until_idle(page, timeout=600)
        after = resident_mb(pid)
        browser.close()
    return started, after


def run() -> list[Result]:
    rows = []
    env = {"LAB_PREDICT_FIRST": "0"}  # every page computes its main result
    with serve_app(entry=ENTRY, env=env) as (url, pid):
        started, after = _open_every_page(url, "", pid)
    rows.append(Result(f"app memory, Cloud entry, bundled model, {len(TOPICS) + 1} pages opened", after,
                       "MB", goal="< 800 MB", note=f"at start: {started:.0f} MB"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = _gpt2_small_folder(Path(tmp))
        with serve_app(entry=ENTRY, env={**env, "LAB_MODEL_ROOTS": tmp}) as (url, pid):
            started, after = _open_every_page(url, f"?model={quote(str(folder))}", pid)
    rows.append(Result(f"app memory, Cloud entry, GPT-2-small shape (124M), {len(TOPICS) + 1} pages", after,
                       "MB", goal="< 1,500 MB", note=f"at start: {started:.0f} MB"))
    return rows
