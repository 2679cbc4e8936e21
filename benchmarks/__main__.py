"""python -m benchmarks [name ...]: run bench_*.py modules, print a table, update results.json."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see tests/conftest.py

import importlib
import json
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _modules(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if n.removeprefix("bench_") in selected or n in selected]
    return names


def main(argv: list[str]) -> int:
    out = HERE / "results.json"
    saved = json.loads(out.read_text()) if out.is_file() else {}
    saved = saved if isinstance(saved, dict) else {}
    rows = []
    for name in _modules(argv):
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results = module.run()
        saved[name] = [r.as_dict() for r in results]  # other modules' last results are kept
        rows += results
    header = f"{'benchmark':58} {'ours':>12} {'peer':>24} {'ratio':>7}  goal"
    print(header)
    print("-" * len(header))
    for r in rows:
        ours = f"{r.value:.4g} {r.unit}"
        peer = f"{r.peer}: {r.peer_value:.4g}" if r.peer_value is not None else r.peer or "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        print(f"{r.name:58} {ours:>12} {peer:>24} {ratio:>7}  {r.goal}")
        if r.note:
            print(f"{'':58}   note: {r.note}")
    out.write_text(json.dumps(saved, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
