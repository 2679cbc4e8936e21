"""The bundled model's page: the words under its heads chart, computed from the same report numbers
the chart draws (the outline rule and its caption are one rule)."""

from __future__ import annotations

import numpy as np

from core.interp.attention.verdicts import check_listing, heads_at_least
from ui.bundled_model.frames import HEAD_KINDS


def _names(heads) -> str:
    return ", ".join(f"{a}.{b}" for a, b in heads) or "none"


def heads_caption(rep: dict, threshold: float) -> str:
    """Which cells are outlined and why, and whether they are the heads the report lists."""
    scores = {kind: np.asarray(m, dtype=float) for kind, m in rep["head_scores"].items()}
    outlined = {kind: heads_at_least(table, threshold) for kind, table in scores.items()}
    n = sum(len(h) for h in outlined.values())
    listed_kinds = [k for k in rep.get("heads", {}) if k in scores]
    checks = [check_listing(k, scores[k], [tuple(int(x) for x in h["head"].split("."))
                                           for h in rep["heads"][k]], threshold) for k in listed_kinds]
    words = [f"**Heads found.** Each cell is a head's score on repeated random tokens; the {n} outlined "
             f"cells score at least {threshold:g} in their panel."]
    same = [HEAD_KINDS.get(c.kind, c.kind) for c in checks if c.same]
    differ = [c for c in checks if not c.same]
    if same:
        words.append(f"For {', '.join(same)} they are exactly the heads the evaluation report lists.")
    for c in differ:
        words.append(f"For {HEAD_KINDS.get(c.kind, c.kind)} the report lists {_names(c.listed)}, but "
                     f"{_names(c.found)} reach {threshold:g} here.")
    unlisted = [k for k in scores if k not in listed_kinds and outlined[k]]
    if unlisted:
        panels = "that panel is" if len(unlisted) == 1 else "those panels are"
        local = narrow_local_heads(outlined) if "local_window" in unlisted else []
        why = (f" (a head that looks at the previous or the current token also scores on the local window: "
               f"{_names(local)} {'does' if len(local) == 1 else 'do'} here)" if local else "")
        words.append(f"The report lists no heads for {' or '.join(HEAD_KINDS.get(k, k) for k in unlisted)}; "
                     f"{panels} shown for comparison{why}.")
    return " ".join(words)


def narrow_local_heads(outlined: dict) -> list[tuple[int, int]]:
    """outlined: kind -> its outlined (layer, head)s. The outlined local-window heads that are also
    outlined as previous- or current-token heads (the narrowest local heads, which score on the
    window too), in layer order."""
    narrow = set(outlined.get("previous_token", [])) | set(outlined.get("current_token", []))
    return sorted(h for h in outlined.get("local_window", []) if h in narrow)
