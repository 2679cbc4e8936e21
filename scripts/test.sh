#!/usr/bin/env bash
# Set up a fresh Debian machine for the tests and run every tier: lint, unit, app (AppTest), and the
# real-browser tests (Playwright driving Debian's chromium against `streamlit run app.py`).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update
as_root apt-get install -y chromium postgresql  # the browser tier; the notebook store's PostgreSQL tests

python3 -m venv .venv
.venv/bin/pip install -r requirements-test.txt

.venv/bin/ruff check .
.venv/bin/python -m pytest tests
