"""The layering rules of DESIGN.md, read from the source: core never imports streamlit, pages never
import torch, and chart builders (ui/charts) and frame makers (ui/*_frames.py) never call st.*."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_core_never_imports_streamlit():
    offenders = [str(p) for p in _files("core") if "streamlit" in _imports(p)]
    assert offenders == []


def test_pages_never_import_torch():
    offenders = [str(p) for p in _files("app_pages") if {"torch", "transformers"} & _imports(p)]
    assert offenders == []


def test_chart_builders_and_frame_makers_do_not_touch_streamlit():
    # ui/charts/* turn data into Altair charts; ui/*_frames.py turn core results into DataFrames
    pure = _files("ui/charts") + sorted((ROOT / "ui").glob("*_frames.py"))
    offenders = [str(p) for p in pure if "streamlit" in _imports(p)]
    assert offenders == [] and len(pure) > 8


def test_the_layer_check_sees_real_files():
    # guard against the checks above passing because they found nothing to read
    assert len(_files("core")) > 5 and len(_files("app_pages")) >= 1
