"""What a steering vector is measured on: a concept's + words and - words, and prompts after which
such a word comes next.

On the bundled model the world we wrote is the answer key: after "Then Kevin felt" a feeling word
comes next, after "When Hannah got home," a pronoun, after "Ivan found a" a colour. Steering toward
"positive" should move probability from the negative feeling words to the positive ones at exactly
those places. For pairs a learner types, the + and - words are the first tokens where each pair
differs ("I love this" / "I hate this" -> " love" vs " hate", measured after "I").

A direction handed over from another page (a probe's "gender -> male") is measured on its own
concept, oriented toward the class it points to: `bundled_targets(lm, "gender", toward="male")` puts
the male pronouns on the + side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.world import datasets as D
from core.world import world as W

BUNDLED_CONCEPTS = tuple(D.CONTRASTS)  # sentiment, gender, colour, place


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


def common_prefix(a, b) -> int:
    """Number of leading tokens two 1-d token rows share."""
    n = min(len(a), len(b))
    same = (a[:n] == b[:n]).long()
    return int(same.cumprod(0).sum())


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


def concept_classes(concept: str) -> tuple[str, ...]:
    """The classes a direction on this concept can point to (what a probe on it tells apart)."""
    if concept not in BUNDLED_CONCEPTS:
        raise ValueError(f"concept must be one of {BUNDLED_CONCEPTS}, not {concept!r}")
    return tuple(D.CLASSES[concept])


def _class_words(concept: str, cls: str) -> tuple[str, list[str]]:
    """(name, words with a leading space) of one class of a concept."""
    if concept == "gender":
        return f"{cls} pronouns", [" " + w for w in dict.fromkeys(W.PRONOUNS[cls].values())]
    if concept == "sentiment":
        return f"{cls} words", [" " + w for w in W.FEELINGS[cls] + W.JUDGEMENTS[cls]]
    return cls, [" " + cls]


def bundled_targets(lm, concept: str, n_prompts: int = 16, toward: str | None = None) -> ConceptTargets:
    """Ground truth for the bundled model: held-out prompts ending where a concept word comes next.

    toward=None measures the concept's contrast (+ = the plus side of core.world's CONTRASTS:
    positive, female, red, beach). toward=a class (one of concept_classes) puts that class on the +
    side and the rest of the classes on the - side (for a two-class concept: the other class)."""
    classes = concept_classes(concept)
    if toward is None:
        plus_cls, minus_cls = D.CONTRASTS[concept][3], D.CONTRASTS[concept][4]
        minus_classes = [minus_cls]
    elif toward in classes:
        plus_cls = toward
        minus_classes = [c for c in classes if c != toward]
    else:
        raise ValueError(f"{concept!r} has no class {toward!r}; its classes are {', '.join(classes)}")
    if concept == "gender":
        prompts = [p.prompt for p in D.pronoun_prompts(n_prompts, seed=1)]
    else:
        sentences = D.labelled_sentences(concept, n_prompts, seed=1, split="heldout")
        prompts = [s.text[: s.char_span[0]].rstrip() for s in sentences]
    plus_name, plus_words = _class_words(concept, plus_cls)
    minus_words = [w for c in minus_classes for w in _class_words(concept, c)[1]]
    minus_name = (_class_words(concept, minus_classes[0])[0] if len(minus_classes) == 1
                  else f"other {concept}s" if concept != "place" else "other places")
    return _targets(lm, plus_name, minus_name, plus_words, minus_words, prompts)


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
