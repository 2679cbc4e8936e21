"""Streamlit Community Cloud entry: the same app as app.py, with the settings of a small shared
container. Pick this file as the app's entry point when deploying; Cloud then installs
cloud/requirements.txt (CPU-only PyTorch) instead of the repository's requirements.txt.

What it changes, each only as a default (the deployment's environment or secrets win):
- LAB_MAX_MODEL_PARAMS=160e6: models up to GPT-2 small / SmolLM2-135M size (the free tier gives an app
  0.7-2.7 GB, and importing the libraries alone takes about 570 MB);
- LAB_TORCH_THREADS=1: one torch thread per forward pass, so visitors share the CPU fairly;
- LAB_NOTEBOOK=session: without a database configured in secrets, each visitor's notebook lives in
  their session (a shared disk would mix visitors, and Cloud wipes it on restart);
- LAB_MODEL_ROOTS="": links load models from the hub and its cache only, never other server folders;
- error details are not shown to visitors (no tracebacks with server paths).
"""

import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for name, value in {"LAB_MAX_MODEL_PARAMS": "160e6", "LAB_TORCH_THREADS": "1", "LAB_NOTEBOOK": "session",
                    "LAB_MODEL_ROOTS": "", "LAB_DEPLOYMENT": "cloud"}.items():
    os.environ.setdefault(name, value)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

st.set_option("client.showErrorDetails", "none")
runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
