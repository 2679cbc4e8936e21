"""The steered text next to the unsteered one, and what the push costs in fluency.

Both texts continue the same prompt with the same seed, written in one batch by
core.models.generation: at every step both rows use the same random numbers (or both pick the most
likely token, at temperature 0). Where the push does not change which token wins, the two texts
agree token for token; the first place they part is the push's doing, not sampling noise.

Fluency is measured by the unsteered model: the perplexity exp(mean negative log-likelihood) of
each continuation, scored without the push. Text the model would write itself scores low (about 2
to 4 on the bundled model); word salad scores in the tens or hundreds. One sampled text is a noisy
sample, so the cost is measured over `n_samples` seeds (the page's seed and the next ones), as the
ratio of the geometric means: steered / unsteered. Greedy text is the same for every seed: one
sample then says all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.interp.steering.vectors import SteeringVector, steer
from core.models.generation import SamplingSettings

N_SAMPLES = 4  # seeds over which the fluency cost is measured


@dataclass(frozen=True)
class TextComparison:
    """Unsteered and steered continuations of one prompt for several seeds (first: the shown one)."""

    coefficient: float
    seeds: tuple[int, ...]
    plain: tuple[tuple[int, ...], ...]  # new token ids, one tuple per seed
    steered: tuple[tuple[int, ...], ...]
    plain_perplexity: tuple[float, ...]  # under the unsteered model, one per seed
    steered_perplexity: tuple[float, ...]
    greedy: bool

    @property
    def perplexity_ratio(self) -> float:
        """Geometric-mean perplexity of the steered texts over that of the unsteered ones."""
        log_ratio = np.mean(np.log(self.steered_perplexity)) - np.mean(np.log(self.plain_perplexity))
        return float(np.exp(log_ratio))

    @property
    def first_difference(self) -> int | None:
        """Index of the first new token where the shown texts differ (None: identical)."""
        for i, (a, b) in enumerate(zip(self.plain[0], self.steered[0], strict=False)):
            if a != b:
                return i
        return None if len(self.plain[0]) == len(self.steered[0]) else min(len(self.plain[0]),
                                                                             len(self.steered[0]))


def _perplexities(lm, tokens: torch.Tensor, lengths: torch.Tensor, n_prompt: int) -> list[float]:
    """Perplexity of each row's new tokens (its first lengths[i]) under the model as it is."""
    if tokens.shape[1] <= n_prompt:
        return [float("nan")] * tokens.shape[0]
    nll = lm.loss(tokens, per_token=True)[:, n_prompt - 1:].float()  # [rows, n_new]
    keep = torch.arange(nll.shape[1])[None] < lengths[:, None]  # [rows, n_new]
    mean = (nll * keep).sum(1) / keep.sum(1).clamp(min=1)
    return [float(x) if k else float("nan") for x, k in zip(mean.exp(), keep.any(1), strict=True)]


def compare_texts(lm, sv: SteeringVector, tokens: torch.Tensor, coefficient: float,
                  settings: SamplingSettings, *, start_pos: int = 0, n_samples: int = N_SAMPLES
                  ) -> TextComparison:
    """Continue tokens [1, pos] without and with the push, for n_samples seeds from settings.seed
    (one when greedy), in one batch: rows alternate unsteered / steered, each pair sharing a seed."""
    seeds = [settings.seed] if settings.greedy else [settings.seed + i for i in range(n_samples)]
    prompt = torch.as_tensor(tokens)[:1]  # [1, pos]
    coefs = torch.tensor([c for _ in seeds for c in (0.0, float(coefficient))])  # [2 * n_seeds]
    with steer(lm, sv, coefs, start_pos):
        out = lm.generate_batch(prompt.repeat(len(coefs), 1), settings,
                                seeds=[s for s in seeds for _ in (0, 1)])
    ppl = _perplexities(lm, out.tokens, out.lengths, out.n_prompt)  # unsteered: outside steer()
    rows = [tuple(out.row(i).tolist()) for i in range(len(coefs))]
    return TextComparison(float(coefficient), tuple(seeds), tuple(rows[0::2]), tuple(rows[1::2]),
                          tuple(ppl[0::2]), tuple(ppl[1::2]), settings.greedy)
