"""Explain, simulate, score (Bills et al., 2023), with the world's labels in place of a judge model.

1. Explain: write a one-line rule for when the neuron fires (core.interp.neurons.rules).
2. Simulate: the rule predicts an activation for every token of fresh text: 1 where it holds, 0
   elsewhere. (Bills et al. ask a language model to simulate from a text explanation; our rule is
   exact, so simulation needs no model.)
3. Score: compare the simulation with the neuron's real activations on that fresh text, generated
   with a seed the explanation never saw:
   - AUROC: the chance that a token where the rule holds has a higher activation than one where it
     does not (1.0: the rule separates them perfectly; 0.5: no better than a coin; below 0.5: the
     neuron fires where the rule does NOT hold);
   - correlation: Pearson's r between the simulation and the activations (Bills et al.'s score),
     which also asks that the neuron be quiet where the rule does not hold.
   As a baseline, a "random rule" that holds on a random set of tokens of the same size scores
   AUROC ~ 0.5 and r ~ 0.

Suggested rules: every single label and its negation scored on a separate labelled sample; the best
of them is the explanation a label-level automatic interpreter would write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from core.interp.neurons.labels import LABELS, LabelledTokens
from core.interp.neurons.rules import Rule, evaluate, parse_rule

GOOD_AUROC = 0.85  # a rule that separates this well explains when the neuron fires
CHANCE_BAND = 0.1  # within this of 0.5 the rule says nothing about the neuron
MIN_MATCHES = 5  # a rule must hold (and not hold) on at least this many tokens to be scored


@dataclass(frozen=True)
class RuleScore:
    rule: str
    auroc: float  # NaN when the rule holds everywhere or nowhere
    correlation: float
    coverage: float  # share of tokens where the rule holds
    n_match: int
    mean_in: float  # mean activation where the rule holds
    mean_out: float
    baseline_auroc: float  # a random rule with the same coverage
    verdict: str  # "explains", "partly", "no_better_than_chance", "opposite", "unscorable"


def ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks 1..n along axis 0 (ties share their average rank): [n, ...] -> [n, ...] float."""
    return rankdata(np.asarray(scores, dtype=np.float32), method="average", axis=0)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the binary labels `positive` (ties count half),
    computed from ranks (the Mann-Whitney U statistic)."""
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = ranks(scores)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def label_aurocs(data: LabelledTokens, acts: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """AUROC of every label for every neuron at once: acts [n_tokens, n_neurons] ->
    (labels, [label, neuron]); NaN for labels with fewer than MIN_MATCHES tokens on either side."""
    acts = np.asarray(acts, dtype=float)
    if acts.ndim == 1:
        acts = acts[:, None]
    r = ranks(acts)  # [n_tokens, neuron]
    M = np.stack([data.labels[label] for label in LABELS]).astype(float)  # [label, n_tokens]
    n_pos = M.sum(1, keepdims=True)  # [label, 1]
    n_neg = M.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (M @ r - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    ok = (n_pos >= MIN_MATCHES) & (n_neg >= MIN_MATCHES)
    return LABELS, np.where(ok, out, np.nan)


def _verdict(a: float) -> str:
    if np.isnan(a):
        return "unscorable"
    if a >= GOOD_AUROC:
        return "explains"
    if abs(a - 0.5) <= CHANCE_BAND:
        return "no_better_than_chance"
    if a < 0.5:
        return "opposite"
    return "partly"


def score_mask(acts: np.ndarray, mask: np.ndarray, rule: str = "", seed: int = 0) -> RuleScore:
    """Score a simulation mask [n_tokens] against one neuron's activations [n_tokens]."""
    acts = np.asarray(acts, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    rng = np.random.default_rng(seed)
    random_mask = np.zeros(len(mask), dtype=bool)
    random_mask[rng.choice(len(mask), size=n, replace=False)] = True
    if n < MIN_MATCHES or len(mask) - n < MIN_MATCHES:
        return RuleScore(rule, float("nan"), float("nan"), n / max(1, len(mask)), n,
                         float(acts[mask].mean()) if n else float("nan"),
                         float(acts[~mask].mean()) if n < len(mask) else float("nan"),
                         float("nan"), "unscorable")
    a = auroc(acts, mask)
    sim = mask.astype(float)
    corr = float(np.corrcoef(sim, acts)[0, 1]) if acts.std() > 0 else 0.0
    return RuleScore(rule, a, corr, n / len(mask), n, float(acts[mask].mean()), float(acts[~mask].mean()),
                     auroc(acts, random_mask), _verdict(a))


def score_rule(rule: Rule | str, data: LabelledTokens, acts: np.ndarray) -> RuleScore:
    """Parse (if needed) and score a rule on data against acts [n_tokens] (one neuron)."""
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    return score_mask(acts, evaluate(rule, data), rule.text)


@dataclass(frozen=True)
class Suggestion:
    rule: str
    auroc: float


def suggest_rules(data: LabelledTokens, acts: np.ndarray, k: int = 3) -> list[Suggestion]:
    """The k single-label rules (a label, or "not label") with the highest AUROC on data."""
    labels, table = label_aurocs(data, acts)
    out = []
    for label, a in zip(labels, table[:, 0], strict=True):
        if not np.isnan(a):
            out += [Suggestion(label, float(a)), Suggestion(f"not {label}", 1.0 - float(a))]
    out.sort(key=lambda s: -s.auroc)
    return out[:k]


def candidate_rules(data: LabelledTokens, acts: np.ndarray, n: int = 4, seed: int = 0) -> tuple[str, ...]:
    """Rules to choose from in a prediction: the best few single labels plus one chosen at random,
    in alphabetical order (so the best is not always first)."""
    best = [s.rule for s in suggest_rules(data, acts, k=n - 1) if not s.rule.startswith("not ")]
    rng = np.random.default_rng(seed)
    pool = [label for label in LABELS if label not in best]
    best.append(str(rng.choice(pool)))
    return tuple(sorted(dict.fromkeys(best)))
