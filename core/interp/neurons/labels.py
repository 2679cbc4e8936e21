"""Every token of fresh generated text, with the bundled world's labels: the answer key for neurons.

The world's generator knows what each word is (a female name, a colour, a positive feeling ...) and
where it stands (in a story with a positive mood, in the second copy of a repeated run ...). So a
neuron's activations can be compared with labels that are true by construction, and an explanation
written over those labels can be scored without a judge model.

Labels per token:
- what the word is (CATEGORY_LABELS): "female name", "male name", "name", "pronoun", "colour",
  "place", "object", "animal", "animal sound", "country", "capital", "city", "thing", "digit",
  "positive word", "negative word", "feeling", "action", "judgement", "event", "punctuation",
  "symbol", "article";
- where it stands (CONTEXT_LABELS): the document's family ("story", "ioi", "fact", "arithmetic",
  "repeat"), the story's mood ("positive story", "negative story"), "second copy" (the repeat of a
  repeated run), "sentence start", and "repeated word" (the word already occurred in the document).

Text is tokenized word by word (each word with its leading space), so every token belongs to one
word; for a model that splits a word into several tokens, each piece carries the word's labels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from core.world import grammar as G
from core.world import world as W

_cap = W.capitalize
_POS = {w for t in (W.FEELINGS, W.ACTIONS, W.JUDGEMENTS, W.EVENTS) for w in t["positive"]}
_NEG = {w for t in (W.FEELINGS, W.ACTIONS, W.JUDGEMENTS, W.EVENTS) for w in t["negative"]}
_FEMALE_PRON = {w for v in W.PRONOUNS["female"].values() for w in (v, _cap(v))}
_MALE_PRON = {w for v in W.PRONOUNS["male"].values() for w in (v, _cap(v))}

CATEGORY_LABELS: dict[str, frozenset[str]] = {
    "female name": frozenset(W.FEMALE_NAMES), "male name": frozenset(W.MALE_NAMES),
    "name": frozenset(W.FEMALE_NAMES + W.MALE_NAMES),
    "female pronoun": frozenset(_FEMALE_PRON), "male pronoun": frozenset(_MALE_PRON),
    "pronoun": frozenset(_FEMALE_PRON | _MALE_PRON),
    "colour": frozenset(W.COLOURS) | {_cap(c) for c in W.COLOURS},
    "place": frozenset(W.PLACES), "object": frozenset(W.OBJECTS), "animal": frozenset(W.ANIMALS),
    "animal sound": frozenset(W.ANIMAL_SOUNDS.values()), "country": frozenset(W.COUNTRIES),
    "capital": frozenset(W.CAPITALS.values()),
    "city": frozenset(W.CAPITALS.values()) | frozenset(W.OTHER_CITIES.values()),
    "thing": frozenset(W.THING_COLOURS), "digit": frozenset(W.DIGITS),
    "positive word": frozenset(_POS), "negative word": frozenset(_NEG),
    "feeling": frozenset(W.FEELINGS["positive"] + W.FEELINGS["negative"]),
    "action": frozenset(W.ACTIONS["positive"] + W.ACTIONS["negative"]),
    "judgement": frozenset(W.JUDGEMENTS["positive"] + W.JUDGEMENTS["negative"]),
    "event": frozenset(W.EVENTS["positive"] + W.EVENTS["negative"]),
    "punctuation": frozenset(W.NO_SPACE_BEFORE), "symbol": frozenset(W.SYMBOLS),
    "article": frozenset({"a", "an", "the", "The", "A", "An"}),
}
FAMILY_LABELS = {"story": "story", "ioi": "ioi", "facts": "fact", "arithmetic": "arithmetic",
                 "repeat_words": "repeat"}
CONTEXT_LABELS = (*FAMILY_LABELS.values(), "positive story", "negative story", "second copy",
                  "sentence start", "repeated word")
LABELS = (*CATEGORY_LABELS, *CONTEXT_LABELS)
TEXT_FAMILIES = tuple(FAMILY_LABELS)


@dataclass(frozen=True)
class LabelledTokens:
    """Token rows of generated documents, and per real token (BOS and padding left out) its word
    and its labels. Flat arrays run over real tokens in row order."""

    rows: torch.Tensor  # [n_docs, pos], right-padded, BOS first
    lengths: torch.Tensor  # [n_docs]
    row: np.ndarray  # [n_tokens] the row of each real token
    pos: np.ndarray  # [n_tokens] its position in the row
    words: tuple[str, ...]  # [n_tokens] the word the token belongs to (no leading space)
    labels: dict  # label -> bool [n_tokens]
    families: np.ndarray  # [n_tokens] the document's family

    @property
    def n_tokens(self) -> int:
        return len(self.words)

    def previous(self, mask: np.ndarray) -> np.ndarray:
        """mask shifted by one token within each document: True where the previous token is True."""
        out = np.zeros_like(mask)
        same = self.row[1:] == self.row[:-1]
        out[1:] = mask[:-1] & same
        return out


def _documents(n_docs: int, seed: int) -> list[tuple[str, list[G.Sentence]]]:
    rng = random.Random(seed)
    weights = [G.FAMILY_WEIGHTS[f] for f in TEXT_FAMILIES]
    out = []
    for _ in range(n_docs):
        family = rng.choices(TEXT_FAMILIES, weights)[0]
        out.append((family, G.document(rng, family)))
    return out


class _PieceIds:
    """Token ids of one word piece (" Mary"), cached: several ids for a model that splits it."""

    def __init__(self, lm):
        self.lm, self.cache = lm, {}

    def __call__(self, piece: str) -> list[int]:
        if piece not in self.cache:
            self.cache[piece] = list(self.lm.tokenizer(piece, add_special_tokens=False)["input_ids"])
        return self.cache[piece]


def labelled_tokens(lm, n_docs: int = 400, seed: int = 0) -> LabelledTokens:
    """n_docs fresh documents of the text families (no random ids), tokenized for lm, with labels."""
    ids_of = _PieceIds(lm)
    bos = int(lm.to_tokens("")[0, 0])
    max_len = lm.cfg.n_ctx
    rows, row_of, pos_of, words, fams = [], [], [], [], []
    flags: dict[str, list[bool]] = {label: [] for label in LABELS}
    for d, (family, sentences) in enumerate(_documents(n_docs, seed)):
        ids, seen, first = [bos], set(), True
        full = False
        for s_i, sentence in enumerate(sentences):
            mood = sentence.labels.get("mood")
            second = family == "repeat_words" and s_i == 1
            for w_i, (word, piece) in enumerate(zip(sentence.words, G.pieces(sentence.words, first=first),
                                                    strict=True)):
                piece_ids = ids_of(piece)
                if len(ids) + len(piece_ids) > max_len:
                    full = True
                    break
                for tid in piece_ids:
                    ids.append(tid)
                    row_of.append(d), pos_of.append(len(ids) - 1), words.append(word), fams.append(family)
                    for label, members in CATEGORY_LABELS.items():
                        flags[label].append(word in members)
                    for fam, label in FAMILY_LABELS.items():
                        flags[label].append(family == fam)
                    flags["positive story"].append(family == "story" and mood == "positive")
                    flags["negative story"].append(family == "story" and mood == "negative")
                    flags["second copy"].append(second)
                    flags["sentence start"].append(w_i == 0)
                    flags["repeated word"].append(word.lower() in seen)
                seen.add(word.lower())
                first = False
            if full:
                break
        rows.append(ids)
    lengths = torch.tensor([len(r) for r in rows])
    out = torch.full((len(rows), int(lengths.max())), bos, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return LabelledTokens(out, lengths, np.array(row_of), np.array(pos_of), tuple(words),
                          {k: np.array(v, dtype=bool) for k, v in flags.items()}, np.array(fams))


def neuron_activations(lm, data: LabelledTokens, layer: int, batch: int = 64, hooks=()) -> torch.Tensor:
    """mlp.hook_post of layer at every real token of data: [n_tokens, d_mlp] float32."""
    from core.models import act_name

    name = act_name("post", layer)
    out = torch.empty(data.n_tokens, lm.cfg.d_mlp)
    start = 0
    for i in range(0, data.rows.shape[0], batch):
        with lm.hooks(list(hooks)), torch.no_grad():
            _, cache = lm.run_with_cache(data.rows[i: i + batch], names=[name], stop_at_layer=layer + 1)
        acts = cache[name].float()  # [b, pos, d_mlp]
        for j in range(acts.shape[0]):
            n = int(data.lengths[i + j]) - 1
            out[start: start + n] = acts[j, 1: n + 1]
            start += n
    return out
