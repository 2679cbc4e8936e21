"""python -m benchmarks [name ...]: run bench_*.py modules, print a table, update results.json.

python -m benchmarks --table prints results.json as the markdown table in the README, running nothing.

OpenMP's wait policy is left as the user has it (unset: idle threads spin briefly, then sleep), as
the app runs. The tests set OMP_WAIT_POLICY=PASSIVE (tests/conftest.py: a test's torch threads
share 2 cores with a Streamlit server), and the benchmarks once did too: a sleeping thread must be
woken for every parallel operation, which made the 2-thread rows of small models about 2x slower
than with the default policy, and slower than 1 thread (a LoRA step of the bundled model: 46 ms
against 24 ms). Both sides paid, so ratios moved less: that step was 0.88x PEFT's under PASSIVE and
0.90x without; the whole 150-step LoRA run 0.90x and 0.98x (its skill measurements sped up less
than the steps)."""

from __future__ import annotations

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


def _cell(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def markdown_table(saved: dict) -> str:
    """One row per saved result: ours, the peer's figure, the ratio and its spread, the load."""
    lines = ["| benchmark | ours | peer | ratio (spread) | threads | load | goal |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for rows in saved.values():
        for r in rows:
            peer = f"{r['peer']}: {_cell(r.get('peer_value'))}" if r.get("peer_value") is not None else "-"
            spread = r.get("ratio_spread")
            ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
            if spread:
                ratio += f" ({spread[0]:.2f}-{spread[1]:.2f})"
            load = r.get("context", {}).get("load_1min")
            lines.append(f"| {r['name']} | {_cell(r['value'])} {r['unit']} | {peer} | {ratio} | "
                         f"{r.get('threads') or '-'} | {load} | {r.get('goal') or ''} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    out = HERE / "results.json"
    if argv == ["--table"]:
        print(markdown_table(json.loads(out.read_text())))
        return 0
    saved = json.loads(out.read_text()) if out.is_file() else {}
    saved = saved if isinstance(saved, dict) else {}
    rows = []
    failed = []
    for name in _modules(argv):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            results = module.run()
        except Exception as err:  # one broken benchmark (a missing package) must not lose the others
            print(f"{name} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        saved[name] = [r.as_dict() for r in results]  # other modules' last results are kept
        out.write_text(json.dumps(saved, indent=2))  # after every module: a long run keeps what it measured
        rows += results
    from benchmarks import machine_context

    ctx = machine_context()
    print(f"CPU: {ctx['cpu']}; {ctx['cores']} cores; load average {ctx['load_1min']}")
    header = f"{'benchmark':58} {'ours':>12} {'peer':>24} {'ratio':>7} {'spread':>13}  goal"
    print(header)
    print("-" * len(header))
    for r in rows:
        ours = f"{r.value:.4g} {r.unit}"
        peer = f"{r.peer}: {r.peer_value:.4g}" if r.peer_value is not None else r.peer or "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        spread = f"{r.ratio_spread[0]:.2f}-{r.ratio_spread[1]:.2f}" if r.ratio_spread else ""
        threads = f" [{r.threads} thr]" if r.threads else ""
        print(f"{r.name + threads:58} {ours:>12} {peer:>24} {ratio:>7} {spread:>13}  {r.goal}")
        if r.note:
            print(f"{'':58}   note: {r.note}")
    out.write_text(json.dumps(saved, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
