"""The layering rules of DESIGN.md and docs/ARCHITECTURE.md, read from the source.

- core never imports streamlit; pages never import torch; chart builders (ui/<topic>/charts.py) and
  frame makers (ui/<topic>/frames.py) never import streamlit.
- Inside core, packages import only downwards in this order:
      models  <-  world  <-  interp  <-  bundled, notebook
  (scratch stands alone). A technique may use the world's datasets for ground truth; the bundled
  model's training and evaluation may use techniques; never the reverse.
- Inside core.interp, a technique package may build on another, but never in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# package -> the core packages it may import (besides itself)
CORE_ORDER: dict[str, set[str]] = {
    "models": set(),
    "scratch": set(),
    "world": {"models"},
    "interp": {"models", "world"},
    "bundled": {"models", "world", "interp"},
    "notebook": {"models", "world", "interp", "bundled", "scratch"},
}


def _modules(path: Path) -> set[str]:
    """Every module named by an import statement in the file (dotted, absolute)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _tops(path: Path) -> set[str]:
    return {m.split(".")[0] for m in _modules(path)}


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_core_never_imports_streamlit():
    offenders = [str(p) for p in _files("core") if "streamlit" in _tops(p)]
    assert offenders == []


def test_pages_never_import_torch():
    offenders = [str(p) for p in _files("app_pages") if {"torch", "transformers"} & _tops(p)]
    assert offenders == []


def test_chart_builders_and_frame_makers_do_not_touch_streamlit():
    pure = sorted(ROOT.glob("ui/*/charts.py")) + sorted(ROOT.glob("ui/*/frames.py"))
    offenders = [str(p) for p in pure if "streamlit" in _tops(p)]
    assert offenders == [] and len(pure) > 8


def _core_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "core" else None


def test_core_packages_import_only_downwards():
    offenders = []
    for path in _files("core"):
        own = path.relative_to(ROOT / "core").parts[0]
        if own not in CORE_ORDER:
            continue  # core/__init__.py
        for module in _modules(path):
            other = _core_package(module)
            if other and other != own and other not in CORE_ORDER[own]:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
    assert set(p.name for p in (ROOT / "core").iterdir() if p.is_dir() and p.name != "__pycache__") \
        <= set(CORE_ORDER), "a new core package needs its place in CORE_ORDER"


def _technique_graph() -> dict[str, set[str]]:
    """core.interp package -> the other core.interp packages it imports."""
    graph: dict[str, set[str]] = {}
    for path in _files("core/interp"):
        parts = path.relative_to(ROOT / "core" / "interp").parts
        if len(parts) < 2:
            continue
        own = parts[0]
        graph.setdefault(own, set())
        for module in _modules(path):
            bits = module.split(".")
            if bits[:2] == ["core", "interp"] and len(bits) > 2 and bits[2] != own:
                graph[own].add(bits[2])
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_techniques_import_each_other_without_cycles():
    # a technique may build on another (patching scores heads with attention's scorers), never both ways
    assert _cycle(_technique_graph()) is None
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check can fail


def test_the_order_check_catches_an_upward_import(tmp_path):
    # the check above must be able to fail: a world module importing a technique is an offender
    fake = tmp_path / "fake.py"
    fake.write_text("from core.interp.attention import head_scores\nimport core.bundled.train\n")
    mods = _modules(fake)
    assert {_core_package(m) for m in mods} >= {"interp", "bundled"}
    assert not {"interp", "bundled"} <= CORE_ORDER["world"]


def test_the_layer_check_sees_real_files():
    # guard against the checks above passing because they found nothing to read
    assert len(_files("core")) > 5 and len(_files("app_pages")) >= 1
    assert len(_files("core/interp")) > 10 and len(_files("core/world")) >= 5
