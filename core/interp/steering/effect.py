"""Measuring what a steering vector does, as a function of its coefficient.

Three numbers per coefficient c, on evaluation prompts that end right where a concept word comes
next ("Then Kevin felt" -> happy or sad?; core.interp.steering.targets):
- p_plus, p_minus: the probability mass the model puts on the + words and on the - words for the next
  token, averaged over the prompts. Steering toward + should raise the first and lower the second.
  Their difference, the balance P(+) - P(-), is what a push in the concept's direction must move: a
  push in any direction can lower both (it just confuses the model), which moves neither's share.
- logit_diff: mean logit of the + words minus mean logit of the - words (no softmax, so it keeps
  moving where the probabilities are already near 0 or 1).
- perplexity: continue one prompt under steering, then score that text with the unsteered model:
  exp(mean negative log-likelihood). It rises when steering makes text the model finds unnatural,
  the price of pushing too hard.

Every curve is computed for the vector and two controls: the opposite sign, and a random vector of
the same norm. All coefficients go through the model in one batch (each row gets its own c), and
the fluency texts of all coefficients are written in one batch by core.models.generation with the
same random numbers, so the row with c = 0 is exactly the unsteered text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.interp.steering.targets import ConceptTargets
from core.interp.steering.vectors import SteeringVector, contrast_vectors, random_like, steer
from core.models import HookedLM
from core.models.backend import lens_logits
from core.models.generation import BatchGeneration, SamplingSettings
from core.models.hook_names import stream_layers

CONTROLS = ("steering vector", "opposite sign", "random, same norm")
FLUENCY = SamplingSettings(max_new_tokens=20, temperature=1.0, seed=0, stop_at_eos=False)
RANDOM_SEEDS = (0, 1, 2)  # random directions of the same norm: the control the verdict weighs


@dataclass(frozen=True)
class CurveSettings:
    """One effect-curve experiment: which coefficients, steered from where, and how the fluency
    text is written (its seed, temperature, top-k and length)."""

    coefficients: tuple[float, ...]
    start_pos: int = 0
    sampling: SamplingSettings = FLUENCY
    control_seed: int = 0  # the random control's direction


@dataclass(frozen=True)
class EffectCurve:
    control: str  # one of CONTROLS
    coefficients: np.ndarray  # [n_coef]
    p_plus: np.ndarray  # [n_coef]
    p_minus: np.ndarray  # [n_coef]
    logit_diff: np.ndarray  # [n_coef]
    perplexity: np.ndarray  # [n_coef], NaN where not measured


def next_token_effect(lm, sv: SteeringVector, targets: ConceptTargets, coefficients: Sequence[float],
                      start_pos: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_plus, p_minus, logit_diff), each [n_coef], at the last token of every evaluation prompt.

    Rows of the batch are (coefficient, prompt) pairs; each prompt is steered from start_pos on, or
    from its last token if it is shorter (so the measured position is always steered)."""
    coefs = torch.tensor(list(coefficients), dtype=torch.float32)  # [n_coef]
    tokens, lengths = lm.tokenize_batch(list(targets.prompts))  # [n_prompt, pos], [n_prompt]
    n_coef, n_prompt = len(coefs), tokens.shape[0]
    rows = tokens.repeat(n_coef, 1)  # [n_coef * n_prompt, pos], coefficient-major
    last = (lengths - 1).repeat(n_coef)  # [n_coef * n_prompt]
    row_coef = coefs.repeat_interleave(n_prompt)  # [n_coef * n_prompt]
    starts = torch.clamp(last, max=start_pos)
    plus, minus = list(targets.plus_ids), list(targets.minus_ids)
    with steer(lm, sv, row_coef, starts), torch.no_grad():
        if isinstance(lm, HookedLM):  # the logits here: only the measured position's are computed
            logits = lm(rows, logits_to_keep=last[:, None])[:, 0].float()  # [rows, d_vocab]
            probs = torch.softmax(logits, dim=-1)[:, plus + minus]  # [rows, n_words]
            logits = logits[:, plus + minus]
        else:  # elsewhere: only the + and - words' logits (and log probabilities) come back
            lens = lens_logits(lm, rows, [lm.cfg.n_layers - 1], last, token_ids=plus + minus)
            logits, probs = lens.logits[0].float(), lens.log_probs[0].float().exp()  # [rows, n_words]
    k = len(plus)
    p_plus = probs[:, :k].sum(-1).view(n_coef, n_prompt).mean(1)
    p_minus = probs[:, k:].sum(-1).view(n_coef, n_prompt).mean(1)
    diff = (logits[:, :k].mean(-1) - logits[:, k:].mean(-1)).view(n_coef, n_prompt).mean(1)
    return p_plus.numpy(), p_minus.numpy(), diff.numpy()


def steered_samples(lm, sv: SteeringVector, tokens: torch.Tensor, coefficients: Sequence[float],
                    settings: SamplingSettings = FLUENCY, *, start_pos: int = 0) -> BatchGeneration:
    """One continuation of tokens [1, pos] per coefficient, all in one batch (one row per c, the
    same random numbers for every row): .tokens is [n_coef, pos + n_new]."""
    coefs = torch.tensor(list(coefficients), dtype=torch.float32)  # [n_coef]
    with steer(lm, sv, coefs, start_pos):
        return lm.generate_batch(torch.as_tensor(tokens)[:1].repeat(len(coefs), 1), settings)


def batch_perplexity(lm, rows: torch.Tensor, n_prompt: int) -> np.ndarray:
    """Perplexity of rows[:, n_prompt:] given the rest, under the model as it is (call unsteered)."""
    if rows.shape[1] <= n_prompt:
        return np.full(rows.shape[0], np.nan)
    nll = lm.loss(rows, per_token=True)[:, n_prompt - 1:]  # [n, n_new]: predictions of the new tokens
    return nll.float().mean(1).exp().numpy()


def effect_curves(lm, sv: SteeringVector, targets: ConceptTargets, settings: CurveSettings, *,
                  fluency_tokens: torch.Tensor | None = None) -> list[EffectCurve]:
    """The vector and its two controls (CONTROLS order), each measured at every coefficient; with
    fluency_tokens [1, pos], also the perplexity of a continuation of them at every coefficient."""
    coefs = np.asarray(settings.coefficients, dtype=np.float64)
    vectors = (sv, sv.opposite(), random_like(sv, settings.control_seed))
    curves = []
    for control, v in zip(CONTROLS, vectors, strict=True):
        p_plus, p_minus, diff = next_token_effect(lm, v, targets, coefs, settings.start_pos)
        ppl = np.full(len(coefs), np.nan)
        if fluency_tokens is not None:
            rows = steered_samples(lm, v, fluency_tokens, coefs, settings.sampling,
                                   start_pos=settings.start_pos).tokens
            ppl = batch_perplexity(lm, rows, fluency_tokens.shape[1])
        curves.append(EffectCurve(control, coefs, p_plus, p_minus, diff, ppl))
    return curves


# -- one coefficient: the numbers the page's verdict weighs -------------------------------------------
@dataclass(frozen=True)
class WordShift:
    """The + and - words' numbers without the push and with it: each a pair (unsteered, steered)."""

    p_plus: tuple[float, float]
    p_minus: tuple[float, float]
    logit_diff: tuple[float, float]

    @property
    def balance_shift(self) -> float:
        """How far the push moved P(+) - P(-), in probability (0.1 = 10 points)."""
        return (self.p_plus[1] - self.p_minus[1]) - (self.p_plus[0] - self.p_minus[0])


@dataclass(frozen=True)
class PointEffect:
    """The vector and random directions of the same norm, each at coefficient 0 and at `coefficient`."""

    coefficient: float
    vector: WordShift
    randoms: tuple[WordShift, ...] = field(default=())

    @property
    def largest_random_shift(self) -> float:
        """The largest |balance shift| among the random pushes (0 when there are none)."""
        return max((abs(r.balance_shift) for r in self.randoms), default=0.0)


def _shift(lm, sv, targets, coefficient, start_pos) -> WordShift:
    p_plus, p_minus, diff = next_token_effect(lm, sv, targets, [0.0, coefficient], start_pos)
    pair = lambda a: (float(a[0]), float(a[1]))  # noqa: E731
    return WordShift(pair(p_plus), pair(p_minus), pair(diff))


def point_effect(lm, sv: SteeringVector, targets: ConceptTargets, coefficient: float, *,
                 start_pos: int = 0, random_seeds: Sequence[int] = RANDOM_SEEDS) -> PointEffect:
    """The vector's word shift at one coefficient, and that of random directions of its norm."""
    randoms = tuple(_shift(lm, random_like(sv, seed), targets, coefficient, start_pos)
                    for seed in random_seeds)
    return PointEffect(float(coefficient), _shift(lm, sv, targets, coefficient, start_pos), randoms)


def count_words(token_ids: Sequence[int], targets: ConceptTargets) -> tuple[int, int]:
    """(number of + words, number of - words) among token_ids."""
    plus, minus = set(targets.plus_ids), set(targets.minus_ids)
    ids = [int(i) for i in token_ids]
    return sum(i in plus for i in ids), sum(i in minus for i in ids)


# -- every layer ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSweep:
    layers: np.ndarray  # [layer] stream layers (EMBEDDINGS = -1, then 0 .. n_layers - 1)
    coefficients: np.ndarray  # [n_coef]
    p_plus: np.ndarray  # [layer, n_coef]
    p_minus: np.ndarray  # [layer, n_coef]
    logit_diff: np.ndarray  # [layer, n_coef]
    norms: np.ndarray  # [layer] norm of the vector built at each layer


def layer_sweep(lm, pairs: Sequence[tuple[str, str]], targets: ConceptTargets, settings: CurveSettings,
                *, position: str = "diff", layers: Sequence[int] | None = None) -> LayerSweep:
    """Build the mean-difference vector at every stream layer and measure it at every coefficient."""
    layers = stream_layers(lm.cfg.n_layers) if layers is None else list(layers)
    vectors = contrast_vectors(lm, pairs, layers, position=position)
    rows = [next_token_effect(lm, vectors[layer], targets, settings.coefficients, settings.start_pos)
            for layer in layers]
    p_plus, p_minus, diff = (np.stack([r[i] for r in rows]) for i in range(3))
    return LayerSweep(np.array(layers), np.asarray(settings.coefficients, dtype=np.float64), p_plus,
                      p_minus, diff, np.array([vectors[layer].norm for layer in layers]))
