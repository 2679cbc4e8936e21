"""Measuring what a steering vector does, as a function of its coefficient.

Three numbers per coefficient c, on evaluation prompts that end right where a concept word comes
next ("Then Kevin felt" -> happy or sad?):
- p_plus, p_minus: the probability mass the model puts on the + words and on the - words for the next
  token, averaged over the prompts. Steering toward + should raise the first and lower the second.
- logit_diff: mean logit of the + words minus mean logit of the - words (no softmax, so it keeps
  moving where the probabilities are already near 0 or 1).
- perplexity: continue one prompt under steering, then score that text with the unsteered model:
  exp(mean negative log-likelihood). It rises when steering makes text the model finds unnatural,
  the price of pushing too hard.

Every curve is computed for the vector and two controls: the opposite sign, and a random vector of
the same norm. All coefficients go through the model in one batch (each row gets its own c).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from core.interp.steering.vectors import (
    SteeringVector,
    common_prefix,
    contrast_vectors,
    random_like,
    steer,
    steering_hook,
)
from core.models.dispatch import HookPoint
from core.models.generation import sample_next
from core.world import datasets as D
from core.world import world as W

BUNDLED_CONCEPTS = tuple(D.CONTRASTS)  # sentiment, gender, colour, place
CONTROLS = ("steering vector", "opposite sign", "random, same norm")


@dataclass(frozen=True)
class ConceptTargets:
    """What to measure: the + and - words (token ids) and prompts after which such a word comes next."""

    plus_name: str
    minus_name: str
    plus_words: tuple[str, ...]
    minus_words: tuple[str, ...]
    plus_ids: tuple[int, ...]
    minus_ids: tuple[int, ...]
    prompts: tuple[str, ...]


def _single_tokens(lm, words: Sequence[str]) -> list[tuple[str, int]]:
    """(word, id) for the words that are one known token for this model."""
    return [(w, i) for w in words if (i := lm.single_token_id(w)) is not None]


def _targets(lm, plus_name, minus_name, plus_words, minus_words, prompts) -> ConceptTargets:
    plus, minus = _single_tokens(lm, plus_words), _single_tokens(lm, minus_words)
    if not plus or not minus:
        raise ValueError(f"No single-token words to measure for {plus_name!r} or {minus_name!r}.")
    (pw, pi), (mw, mi) = zip(*plus, strict=True), zip(*minus, strict=True)
    return ConceptTargets(plus_name, minus_name, pw, mw, pi, mi, tuple(prompts))


def bundled_pairs(concept: str, n: int = 16, seed: int = 0) -> list[tuple[str, str]]:
    """The bundled world's contrast pairs as (plus, minus) texts."""
    return [(p.plus, p.minus) for p in D.contrast_pairs(concept, n, seed)]


def bundled_targets(lm, concept: str, n_prompts: int = 16) -> ConceptTargets:
    """Ground truth for the bundled model: held-out prompts ending where a concept word comes next."""
    pair = D.contrast_pairs(concept, 1)[0]
    if concept == "gender":
        prompts = [p.prompt for p in D.pronoun_prompts(n_prompts, seed=1)]
        plus = [" " + w for w in dict.fromkeys(W.PRONOUNS["female"].values())]
        minus = [" " + w for w in dict.fromkeys(W.PRONOUNS["male"].values())]
        return _targets(lm, "female pronouns", "male pronouns", plus, minus, prompts)
    sentences = D.labelled_sentences(concept, n_prompts, seed=1, split="heldout")
    prompts = [s.text[: s.char_span[0]].rstrip() for s in sentences]
    if concept == "sentiment":
        groups = D.token_groups()
        return _targets(lm, "positive words", "negative words", groups["positive words"],
                        groups["negative words"], prompts)
    plus_word, minus_word = D.CONTRASTS[concept][1][0], D.CONTRASTS[concept][2][0]
    return _targets(lm, pair.plus_label, pair.minus_label, [" " + plus_word], [" " + minus_word], prompts)


def targets_from_pairs(lm, pairs: Sequence[tuple[str, str]]) -> ConceptTargets:
    """For typed pairs: + words are the first tokens where each plus text differs from its partner,
    - words likewise; the prompts are the shared beginnings ("I love you" / "I hate you" -> "I")."""
    plus, minus, prompts = [], [], []  # token ids are kept as they are (no text round trip)
    cut = False
    for p, m in pairs:
        tp, tm = lm.to_tokens(p)[0], lm.to_tokens(m)[0]  # [pos] each, BOS first, cut to n_ctx
        k = common_prefix(tp, tm)  # < n_ctx whenever the sides differ inside the window
        if k < len(tp) and k < len(tm):
            plus.append(int(tp[k]))
            minus.append(int(tm[k]))
            prompts.append(lm.to_string(tp[1:k]))
        cut |= k >= lm.cfg.n_ctx
    both = set(plus) & set(minus)
    plus = [i for i in dict.fromkeys(plus) if i not in both]
    minus = [i for i in dict.fromkeys(minus) if i not in both]
    if not plus or not minus:
        why = (f" (texts are cut to the model's context window of {lm.cfg.n_ctx} tokens, and a pair "
               "that differs only after it has no differing word)" if cut else "")
        raise ValueError(f"The pairs need a first differing word on each side to measure the "
                         f"effect{why}.")
    words = lambda ids: tuple(lm.to_string([i]) for i in ids)  # noqa: E731
    return ConceptTargets("+ words", "- words", words(plus), words(minus), tuple(plus), tuple(minus),
                          tuple(dict.fromkeys(prompts)))


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
    with steer(lm, sv, row_coef, starts), torch.no_grad():
        logits = lm(rows, logits_to_keep=last[:, None])[:, 0].float()  # [rows, d_vocab]
    probs = torch.softmax(logits, dim=-1)
    plus, minus = list(targets.plus_ids), list(targets.minus_ids)
    p_plus = probs[:, plus].sum(-1).view(n_coef, n_prompt).mean(1)
    p_minus = probs[:, minus].sum(-1).view(n_coef, n_prompt).mean(1)
    diff = (logits[:, plus].mean(-1) - logits[:, minus].mean(-1)).view(n_coef, n_prompt).mean(1)
    return p_plus.numpy(), p_minus.numpy(), diff.numpy()


def steered_samples(lm, sv: SteeringVector, tokens: torch.Tensor, coefficients: Sequence[float], *,
                    start_pos: int = 0, n_new: int = 20, temperature: float = 1.0,
                    top_k: int | None = None, seed: int = 0) -> torch.Tensor:
    """One continuation of tokens [1, pos] per coefficient, all in one batch with the KV cache
    -> [n_coef, pos + n_new]. Each step feeds one token per row; the hook is told its position."""
    coefs = torch.tensor(list(coefficients), dtype=torch.float32)  # [n_coef]
    n_new = max(0, min(n_new, lm.cfg.n_ctx - tokens.shape[1]))
    rows = tokens.repeat(len(coefs), 1)  # [n_coef, pos]
    g = torch.Generator().manual_seed(seed)
    push, offset = steering_hook(sv.vector, coefs, start_pos), [0]

    def hook(act, point):  # point.pos_offset is 0 here: this loop, not lm.generate, owns the cache
        return push(act, HookPoint(point.name, point.layer, offset[0]))

    cache, step = DynamicCache(config=lm.model.config), rows
    with lm.hooks([(sv.hook_name, hook)]), torch.no_grad():
        for _ in range(n_new):
            logits = lm.model(input_ids=step, past_key_values=cache, use_cache=True).logits[:, -1]
            offset[0] += step.shape[1]
            step = sample_next(logits, temperature, top_k, g)[:, None]  # [n_coef, 1]
            rows = torch.cat([rows, step], dim=1)
    return rows


def batch_perplexity(lm, rows: torch.Tensor, n_prompt: int) -> np.ndarray:
    """Perplexity of rows[:, n_prompt:] given the rest, under the model as it is (call unsteered)."""
    if rows.shape[1] <= n_prompt:
        return np.full(rows.shape[0], np.nan)
    with torch.no_grad():
        logits = lm(rows).float()  # [n, pos, d_vocab]
    logp = torch.log_softmax(logits[:, n_prompt - 1: -1], dim=-1)  # [n, n_new, d_vocab]
    nll = -logp.gather(-1, rows[:, n_prompt:, None])[..., 0].mean(1)  # [n]
    return nll.exp().numpy()


def effect_curves(lm, sv: SteeringVector, targets: ConceptTargets, coefficients: Sequence[float], *,
                  fluency_tokens: torch.Tensor | None = None, start_pos: int = 0, n_new: int = 20,
                  temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
                  control_seed: int = 0) -> list[EffectCurve]:
    """The vector and its two controls (CONTROLS order), each measured at every coefficient."""
    coefs = np.asarray(list(coefficients), dtype=np.float64)
    vectors = (sv, sv.opposite(), random_like(sv, control_seed))
    curves = []
    for control, v in zip(CONTROLS, vectors, strict=True):
        p_plus, p_minus, diff = next_token_effect(lm, v, targets, coefs, start_pos)
        ppl = np.full(len(coefs), np.nan)
        if fluency_tokens is not None:
            rows = steered_samples(lm, v, fluency_tokens, coefs, start_pos=start_pos, n_new=n_new,
                                   temperature=temperature, top_k=top_k, seed=seed)
            ppl = batch_perplexity(lm, rows, fluency_tokens.shape[1])
        curves.append(EffectCurve(control, coefs, p_plus, p_minus, diff, ppl))
    return curves


@dataclass(frozen=True)
class LayerSweep:
    layers: np.ndarray  # [layer]
    coefficients: np.ndarray  # [n_coef]
    p_plus: np.ndarray  # [layer, n_coef]
    p_minus: np.ndarray  # [layer, n_coef]
    logit_diff: np.ndarray  # [layer, n_coef]
    norms: np.ndarray  # [layer] norm of the vector built at each layer


def layer_sweep(lm, pairs: Sequence[tuple[str, str]], targets: ConceptTargets,
                coefficients: Sequence[float], *, position: str = "diff", start_pos: int = 0,
                layers: Sequence[int] | None = None) -> LayerSweep:
    """Build the mean-difference vector at every layer and measure it at every coefficient."""
    layers = list(range(lm.cfg.n_layers)) if layers is None else list(layers)
    vectors = contrast_vectors(lm, pairs, layers, position=position)
    rows = [next_token_effect(lm, vectors[layer], targets, coefficients, start_pos) for layer in layers]
    p_plus, p_minus, diff = (np.stack([r[i] for r in rows]) for i in range(3))
    return LayerSweep(np.array(layers), np.asarray(list(coefficients), dtype=np.float64), p_plus, p_minus,
                      diff, np.array([vectors[layer].norm for layer in layers]))
