"""The bundled model's evaluation report: the ground truth pages compare techniques against.

`python -m core.bundled.evaluate` writes eval_report.json next to the checkpoint; it names the heads
of each type (previous-token, induction, ...) with their scores, the floors the model must pass, and
the limits found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def load_report(folder: str | Path) -> dict | None:
    """eval_report.json of a checkpoint folder, or None if it has none."""
    path = Path(folder) / "eval_report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def report_heads(report: Mapping) -> dict[str, list[tuple[int, int, float]]]:
    """kind -> [(layer, head, score)] as the report lists them ("heads": {kind: [{"head": "1.2"}]})."""
    out = {}
    for kind, rows in (report.get("heads") or {}).items():
        parsed = []
        for row in rows:
            layer, head = (int(x) for x in str(row["head"]).split("."))
            parsed.append((layer, head, float(row.get("score", float("nan")))))
        out[kind] = parsed
    return out
