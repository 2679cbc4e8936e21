"""Data frames for the LoRA page's charts, built from core results (no Streamlit calls here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.interp.finetune.behaviour_diff import TokenKL
from core.interp.finetune.forgetting import ACCURACIES, SKILL_LABELS, SKILLS
from core.interp.finetune.verdict import ForgettingReport, SkillDrop
from core.interp.finetune.weight_diff import MatrixDiff

ROLE_LABELS = {"attn_qkv": "attn qkv", "attn_out": "attn out", "mlp_in": "MLP in", "mlp_out": "MLP out"}
ROLE_WORDS = {"attn_qkv": "attention's query, key and value matrix", "attn_out": "attention's output matrix",
              "mlp_in": "MLP's input matrix", "mlp_out": "MLP's output matrix"}
# When a role has several matrices (Llama's q_proj, k_proj, v_proj), the last part of the name says which.
PART_WORDS = {"q_proj": "query matrix W_Q", "k_proj": "key matrix W_K", "v_proj": "value matrix W_V",
              "gate_proj": "MLP's gate matrix", "up_proj": "MLP's up matrix"}


def matrix_words(role: str, module: str) -> str:
    """Plain words for an adapted matrix: "attention's output matrix", "query matrix W_Q"."""
    return PART_WORDS.get(module.rsplit(".", 1)[-1], ROLE_WORDS.get(role, module))


def loss_frame(losses: dict[str, list[float]], max_points: int = 400) -> pd.DataFrame:
    """run -> per-step losses, as (run, step, loss), thinned to about max_points per run."""
    rows = []
    for run, values in losses.items():
        every = max(1, len(values) // max_points)
        rows += [(run, i + 1, v) for i, v in enumerate(values) if i % every == 0 or i == len(values) - 1]
    return pd.DataFrame(rows, columns=["run", "step", "loss"])


def norms_frame(reports: dict[str, list[MatrixDiff]]) -> pd.DataFrame:
    rows = [(run, m.layer, ROLE_LABELS.get(m.role, m.role), m.module, m.rel_fro, m.fro, m.effective_rank,
             m.energy_rank_90, m.rank, f"{m.shape[0]} x {m.shape[1]}")
            for run, report in reports.items() for m in report]
    return pd.DataFrame(rows, columns=["run", "layer", "role", "module", "rel_fro", "fro", "effective_rank",
                                       "energy_rank_90", "rank", "shape"])


def spectrum_frame(spectra: dict[str, np.ndarray], top: int = 128, rtol: float = 1e-6) -> pd.DataFrame:
    """(run, index, value, share of energy); values under rtol * s_1 are float noise and left out."""
    rows = []
    for run, s in spectra.items():
        energy = float((s.astype(np.float64) ** 2).sum()) or 1.0
        keep = s[: top][s[: top] > rtol * (s.max() if s.size else 0)]
        rows += [(run, i + 1, float(v), float(v) ** 2 / energy) for i, v in enumerate(keep)]
    return pd.DataFrame(rows, columns=["run", "index", "value", "share"])


def heatmap_frame(pooled: np.ndarray) -> pd.DataFrame:
    r, c = np.indices(pooled.shape)
    return pd.DataFrame({"row": r.ravel(), "col": c.ravel(), "value": pooled.ravel()})


def rank_table(reports: dict[str, list[MatrixDiff]]) -> pd.DataFrame:
    """One row per run: size and rank of its update, summed / averaged over its matrices."""
    rows = []
    for run, report in reports.items():
        if not report:
            continue
        rows.append({"run": run, "matrices": len(report),
                     "total ‖ΔW‖_F": float(np.sqrt(sum(m.fro ** 2 for m in report))),
                     "mean ‖ΔW‖/‖W‖": float(np.mean([m.rel_fro for m in report])),
                     "mean effective rank": float(np.mean([m.effective_rank for m in report])),
                     "mean rank for 90% energy": float(np.mean([m.energy_rank_90 for m in report])),
                     "max numerical rank": max(m.rank for m in report),
                     "matrix size": f"up to {max(min(m.shape) for m in report)}"})
    return pd.DataFrame(rows)


def overlap_frame(overlaps: dict[str, tuple[float, float, float]], where: dict[str, tuple[int, str, str]]
                  ) -> pd.DataFrame:
    rows = [(where[n][0], ROLE_LABELS.get(where[n][1], where[n][1]), o, i, c)
            for n, (o, i, c) in overlaps.items()]
    frame = pd.DataFrame(rows, columns=["layer", "matrix", "output-side overlap", "input-side overlap",
                                        "chance (k / d)"])
    order = {label: i for i, label in enumerate(ROLE_LABELS.values())}
    return frame.sort_values(["layer", "matrix"], key=lambda c: c.map(order) if c.name == "matrix" else c
                             ).reset_index(drop=True)


def kl_frame(kls: dict[str, TokenKL]) -> pd.DataFrame:
    rows = []
    for run, t in kls.items():
        for pos, tok in enumerate(t.str_tokens):
            rows.append((run, pos, f"{pos}:{tok}", t.kl[pos], t.top_before[pos], t.top_after[pos]))
    return pd.DataFrame(rows, columns=["run", "pos", "label", "kl", "top_before", "top_after"])


def changed_tokens_frame(t: TokenKL, k: int = 6) -> pd.DataFrame:
    rows = [{"at token": f"{i}: {t.str_tokens[i]!r}", "KL": t.kl[i], "top next, base": repr(t.top_before[i]),
             "top next, tuned": repr(t.top_after[i]), "p(tuned's top), base": t.p_before[i],
             "p(tuned's top), tuned": t.p_after[i]} for i in t.most_changed(k)]
    return pd.DataFrame(rows)


def forgetting_frame(histories: dict[str, list[tuple[int, dict[str, float]]]],
                     skills: tuple[str, ...] = SKILLS) -> pd.DataFrame:
    """(run, step, skill label, value) for the chosen skills, finite values only."""
    rows = [(run, step, SKILL_LABELS[s], scores[s]) for run, history in histories.items()
            for step, scores in history for s in skills if np.isfinite(scores[s])]
    return pd.DataFrame(rows, columns=["run", "step", "skill", "value"])


def accuracy_frame(histories) -> pd.DataFrame:
    """The accuracies (IOI, facts, induction, new task), all shares in [0, 1]."""
    return forgetting_frame(histories, ACCURACIES)


def other_skills_frame(histories) -> pd.DataFrame:
    """The skills that are not shares: IOI logit difference and validation loss."""
    return forgetting_frame(histories, tuple(s for s in SKILLS if s not in ACCURACIES))


def summary_frame(drops: dict[str, tuple[SkillDrop, ...]]) -> pd.DataFrame:
    """Before -> after per skill (rows) and run (columns), e.g. "1.00 -> 0.83" (verdict.skill_drops:
    the same first and last measurements the verdicts use)."""
    return pd.DataFrame({run: {SKILL_LABELS[d.skill]: f"{d.before:.2f} → {d.after:.2f}" for d in items}
                         for run, items in drops.items()})


def learn_forget_frame(report: ForgettingReport) -> pd.DataFrame:
    """One point per run: new-task accuracy at the end (learned) and the mean accuracy lost on the old
    skills (forgotten), the numbers the verdict uses."""
    rows = [(r.label, r.task_after, r.mean_drop) for r in report.runs
            if np.isfinite(r.task_after) and np.isfinite(r.mean_drop)]
    return pd.DataFrame(rows, columns=["run", "learned", "forgotten"])


def run_summary_frame(runs: dict) -> pd.DataFrame:
    """One row per run: method, steps, seconds, trainable parameters, task accuracy before -> after."""
    rows = []
    for label, run in runs.items():
        history = getattr(run, "history_", [])
        task = (f"{history[0][1]['task_accuracy']:.2f} → {history[-1][1]['task_accuracy']:.2f}"
                if history else "")
        rows.append({"run": label, "steps": getattr(run, "steps_done_", None),
                     "seconds": round(getattr(run, "seconds_", 0.0), 1),
                     "trainable parameters": getattr(run, "n_trainable_", None), "new task accuracy": task})
    return pd.DataFrame(rows)
