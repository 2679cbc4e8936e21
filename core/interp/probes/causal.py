"""The causal check: the model can *represent* gender at layer L, but does it *use* that direction?

A probe finds a direction along which examples with different labels differ. That is a correlation.
To test use, remove the direction during a forward pass and watch a behaviour that needs the
property. For gender: after "Mary was happy because" the model should prefer " she" to " he"; the
logit difference logit(right pronoun) - logit(wrong pronoun) measures how much.

Removing a direction u (unit length) from an activation x is a projection:
    x' = x - (x . u) u,   so x' . u = 0 exactly
(for a multi-class probe, the span of its class directions is removed, with an orthonormal basis).
It is applied at the probe's hook point, at every position. Control: remove as many random
directions and check the effect is specific to the probe's. If the logit difference barely moves,
the model reads gender elsewhere (another direction, a later layer) even though the probe found
it here; if it collapses, the probe found a direction the model uses ("amnesic probing",
Elazar et al., 2021).

Which direction? A logistic-regression probe's weights are the best *separator*, which can lean on
small, incidental differences; the difference between the class means is where the classes
actually sit apart. Marks & Tegmark (2023) found such "mass-mean" directions more causally
implicated than regression weights, so both are removed here, side by side.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.models import HookedLM
from core.world import datasets as D
from core.world import world as W

CLEAN = "clean"
REMOVED_PROBE = "probe weights removed"
REMOVED_MEANS = "class-mean difference removed"
REMOVED_RANDOM = "random direction removed"


def orthonormal_basis(directions: np.ndarray, tol: float = 1e-6) -> torch.Tensor:
    """[k, d] orthonormal rows spanning the rows of directions [n_dir, d] (k <= n_dir)."""
    A = torch.as_tensor(np.atleast_2d(directions), dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    keep = S > tol * S.max()
    return Vh[keep].float()  # [k, d]


def project_out(act: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """act [..., d] minus its component in the span of basis [k, d] (orthonormal rows)."""
    basis = basis.to(act.dtype)
    return act - (act @ basis.T) @ basis  # [..., k] @ [k, d]


def projection_hook(basis: torch.Tensor):
    """A hook fn that removes the span of basis from the activation at every position."""
    def hook(act, hook_point):
        return project_out(act, basis)
    return hook


@dataclass(frozen=True)
class Behaviour:
    """Prompts, and per prompt the tokens that are right and wrong for the next word; the score is
    mean logit(right) - mean logit(wrong) at the last prompt token."""

    attribute: str
    description: str
    right_side: str  # what "right" means here, e.g. "the right pronoun"
    prompts: tuple[str, ...]
    right: tuple[tuple[str, ...], ...]
    wrong: tuple[tuple[str, ...], ...]


def gender_behaviour(n: int = 200, seed: int = 0) -> Behaviour:
    """"Mary was happy because" -> " she" rather than " he" (core.world.datasets.pronoun_prompts)."""
    prompts = D.pronoun_prompts(n, seed=seed)
    return Behaviour("gender", "logit(right pronoun) - logit(wrong pronoun)", "the right pronoun",
                     tuple(p.prompt for p in prompts), tuple((p.correct,) for p in prompts),
                     tuple((p.wrong,) for p in prompts))


def sentiment_behaviour(n: int = 200, seed: int = 0) -> Behaviour:
    """"Mary was sad because she" -> " lost", " broke", " dropped" rather than " found", " got",
    " won": in the bundled stories every event matches the mood."""
    rng = random.Random(seed)
    prompts, right, wrong = [], [], []
    for i in range(n):
        mood, other = W.SENTIMENTS[i % 2], W.SENTIMENTS[1 - i % 2]
        name = rng.choice(W.FEMALE_NAMES + W.MALE_NAMES)
        pron = W.PRONOUNS[W.GENDER_OF[name]]["subj"]
        prompts.append(f"{name} was {rng.choice(W.FEELINGS[mood])} because {pron}")
        right.append(tuple(" " + e for e in W.EVENTS[mood]))
        wrong.append(tuple(" " + e for e in W.EVENTS[other]))
    return Behaviour("sentiment", "mean logit(events of the mood) - mean logit(events of the "
                     "other mood)", "events of the story's mood", tuple(prompts), tuple(right), tuple(wrong))


BEHAVIOURS = {"gender": gender_behaviour, "sentiment": sentiment_behaviour}


@dataclass(frozen=True)
class CausalResult:
    """Per condition ("clean", each named direction removed, "random direction removed"): the mean
    and standard error of the score, and the share of prompts where the right side wins."""

    hook_name: str
    conditions: tuple[str, ...]
    mean: np.ndarray  # [condition]
    sem: np.ndarray  # [condition]
    right_rate: np.ndarray  # [condition]
    flipped: np.ndarray  # [condition] share of prompts whose winner changed vs clean
    n_removed: int  # directions removed (rank of the first named span)


def _token_ids(lm: HookedLM, words: Sequence[str]) -> list[int]:
    ids = [lm.single_token_id(w) for w in words]
    for w, i in zip(words, ids, strict=True):
        if i is None:
            n = lm.to_tokens(w, prepend_bos=False).shape[1]
            what = f"{n} tokens" if n != 1 else "an unknown word"
            raise ValueError(f"{w!r} is {what} for {lm.name}; the check needs single tokens.")
    return ids


def behaviour_scores(lm: HookedLM, behaviour: Behaviour, fwd_hooks=()) -> np.ndarray:
    """[prompt] score of the behaviour, with the given hooks active."""
    right = [_token_ids(lm, r) for r in behaviour.right]
    wrong = [_token_ids(lm, w) for w in behaviour.wrong]
    with lm.hooks(list(fwd_hooks)):
        last = lm.next_token_logits(behaviour.prompts)  # [batch, d_vocab] at each last token
    return np.array([float(row[r].mean() - row[w].mean())
                     for row, r, w in zip(last, right, wrong, strict=True)])


def causal_check(lm: HookedLM, hook_name: str, directions: dict[str, np.ndarray],
                 behaviour: Behaviour, seed: int = 0) -> CausalResult:
    """Score the behaviour clean, with each named set of directions ([n_dir, d]) projected out at
    hook_name, and with as many random directions as the first set projected out."""
    bases = {name: orthonormal_basis(d) for name, d in directions.items()}  # [k, d] each
    k, d = next(iter(bases.values())).shape
    gen = torch.Generator().manual_seed(seed)
    bases[REMOVED_RANDOM] = orthonormal_basis(torch.randn(k, d, generator=gen).numpy())
    scores = {CLEAN: behaviour_scores(lm, behaviour)}
    for name, basis in bases.items():
        scores[name] = behaviour_scores(lm, behaviour, [(hook_name, projection_hook(basis))])
    clean_wins = scores[CLEAN] > 0
    return CausalResult(
        hook_name=hook_name, conditions=tuple(scores),
        mean=np.array([s.mean() for s in scores.values()]),
        sem=np.array([s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else 0.0
                      for s in scores.values()]),
        right_rate=np.array([(s > 0).mean() for s in scores.values()]),
        flipped=np.array([((s > 0) != clean_wins).mean() for s in scores.values()]),
        n_removed=int(k))
