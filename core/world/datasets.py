"""Labelled datasets from the synthetic world, for the pages that test techniques against the truth.

Every function is seeded and returns frozen dataclasses of plain strings and labels. Answer words
carry their leading space (" Mary"), so `lm.to_tokens(" Mary")[0, 1]` is the answer token. Token
indices count the BOS token at position 0, exactly as `lm.to_tokens(text)` lays them out.

Held-out splits, and what they hold out:
- ioi_prompts: "heldout" uses only intro x action template pairs that never occur in training.
- labelled_sentences: "heldout" uses names and sentence frames that the "train" split never uses
  (the model saw every name in training; the held-out names are new to the probe, not the model).
- fact_prompts: "train" are the facts as the corpus states them; "heldout" asks for the same
  facts in phrasings the corpus never uses (a test of the limits, not a quality floor).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from core.world import grammar as G
from core.world import world as W
from core.world.corpus import corpus_documents
from core.world.tokenizer import special_ids, vocabulary

SPLITS = ("train", "heldout")


def _check_split(split: str, allowed=SPLITS + ("all",)) -> None:
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, not {split!r}")


def _span(words, index: int) -> tuple[int, int]:
    """Character span of words[index] (without its leading space) in G.text(words)."""
    pieces = G.pieces(words)
    start = sum(len(p) for p in pieces[:index]) + (len(pieces[index]) - len(words[index]))
    return start, start + len(words[index])


# -- indirect object identification ---------------------------------------------------------------
@dataclass(frozen=True)
class IOIPrompt:
    """clean: "When Mary and John went to the store, John gave a drink to" (answer io=" Mary").
    corrupt: the same with the second mention of the subject replaced by a third name c, so the
    prompt no longer says who the indirect object is. positions: token index (BOS = 0) of "IO",
    "S1" (first subject mention), "S2" (second) and "end" (the last prompt token)."""

    clean: str
    corrupt: str
    io: str
    s: str
    c: str
    intro: int
    action: int
    io_first: bool
    positions: dict


def ioi_prompts(n: int, seed: int = 0, split: str = "heldout") -> list[IOIPrompt]:
    """n IOI prompts using template pairs of the split: "train", "heldout" or "all"."""
    _check_split(split)
    combos = {"train": G.IOI_TRAIN, "heldout": tuple(sorted(G.IOI_HELDOUT)),
              "all": G.IOI_TRAIN + tuple(sorted(G.IOI_HELDOUT))}[split]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sent = G.ioi_sentence(rng, combos[i % len(combos)])
        words = sent.words[:-2]  # drop the answer and the full stop
        io, s = sent.labels["io"], sent.labels["s"]
        c = rng.choice([m for m in W.FEMALE_NAMES + W.MALE_NAMES if m not in (io, s)])
        s2 = sent.slots["S"]
        corrupt = (*words[:s2], c, *words[s2 + 1:])
        a, b = sent.slots["A"], sent.slots["B"]
        io_pos, s1_pos = (a, b) if sent.labels["io_first"] else (b, a)
        positions = {"IO": io_pos + 1, "S1": s1_pos + 1, "S2": s2 + 1, "end": len(words)}
        out.append(IOIPrompt(G.text(words), G.text(corrupt), " " + io, " " + s, " " + c,
                             sent.labels["intro"], sent.labels["action"],
                             sent.labels["io_first"], positions))
    return out


# -- induction -------------------------------------------------------------------------------------
def induction_tokens(n: int, half_len: int, seed: int = 0, vocab_size: int | None = None,
                     bos_id: int = 0, exclude=None) -> torch.Tensor:
    """LongTensor [n, 1 + 2 * half_len]: BOS, half_len random ids, then the same ids again.

    Ids are uniform over the whole vocabulary except `exclude` (default: the bundled specials), so
    the second half can only be predicted by copying: the job of induction heads.
    """
    vocab_size = vocab_size or len(vocabulary())
    banned = set(special_ids() if exclude is None else exclude) | {bos_id}
    allowed = torch.tensor([i for i in range(vocab_size) if i not in banned])
    gen = torch.Generator().manual_seed(seed)
    half = allowed[torch.randint(len(allowed), (n, half_len), generator=gen)]  # [batch, half_len]
    bos = torch.full((n, 1), bos_id, dtype=torch.long)
    return torch.cat([bos, half, half], dim=1)


# -- labelled sentences for probes -----------------------------------------------------------------
@dataclass(frozen=True)
class LabelledSentence:
    """A sentence, its label, and the token that carries it (" red", or "Mary" at the start of a
    text); token_index counts BOS as 0, char_span is the word's place in text (without space)."""

    text: str
    label: str
    attribute: str
    word: str
    token_index: int
    char_span: tuple[int, int]


# attribute -> (slot that carries the label, train frames, heldout frames)
FRAMES = {
    "gender": ("name",
               ("{name} went to the {place} .", "One day , {name} went to the {place} .",
                "At the {place} , {name} saw a {animal} ."),
               ("In the morning , {name} walked to the {place} .",
                "Today , {name} was at the {place} .")),
    "sentiment": ("feel",
                  ("{name} was {feel} at the {place} .", "{name} felt {feel} ."),
                  ("When {name} got home , {s} was {feel} .", "Then {name} felt {feel} .")),
    "colour": ("colour",
               ("{name} found {a} {colour} {object} .", "The {object} was {colour} ."),
               ("{name} liked {p} {colour} {object} .", "{name} got {a} {colour} {object} .")),
    "place": ("place",
              ("{name} went to the {place} .", "At the {place} , {name} saw a {animal} ."),
              ("{name} was at the {place} .", "Then {name} walked to the {place} .")),
}
ATTRIBUTES = tuple(FRAMES)
CLASSES = {"gender": ("female", "male"), "sentiment": W.SENTIMENTS, "colour": W.COLOURS,
           "place": W.PLACES}


def labelled_sentences(attribute: str, n: int, seed: int = 0, split: str = "train"
                       ) -> list[LabelledSentence]:
    """n sentences labelled by attribute: "gender", "sentiment", "colour" or "place" (balanced)."""
    if attribute not in FRAMES:
        raise ValueError(f"attribute must be one of {ATTRIBUTES}, not {attribute!r}")
    _check_split(split, SPLITS)
    slot, train_frames, heldout_frames = FRAMES[attribute]
    frames = train_frames if split == "train" else heldout_frames
    names = {g: W.split_names(g, split) for g in W.NAMES}
    rng = random.Random(seed)
    classes = CLASSES[attribute]
    out = []
    for i in range(n):
        label = classes[i % len(classes)]
        gender = label if attribute == "gender" else rng.choice(("female", "male"))
        mood = label if attribute == "sentiment" else rng.choice(W.SENTIMENTS)
        values = G.story_values(rng, mood, rng.choice(names[gender]))
        if attribute in ("colour", "place"):
            values[slot] = label
        words, slots = G.fill(rng.choice(frames), values)
        index = slots[slot]
        out.append(LabelledSentence(G.text(words), label, attribute, G.pieces(words)[index],
                                    index + 1, _span(words, index)))
    rng.shuffle(out)
    return out


# -- pronouns --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PronounPrompt:
    prompt: str
    name: str
    gender: str
    correct: str
    wrong: str


PRONOUN_FRAMES = ("{name} was {feel} because", "When {name} got home ,", "{name} liked")


def pronoun_prompts(n: int, seed: int = 0) -> list[PronounPrompt]:
    """Prompts whose next word is a pronoun of the named character; the name is the only cue."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        gender = ("female", "male")[i % 2]
        frame = PRONOUN_FRAMES[rng.randrange(len(PRONOUN_FRAMES))]
        values = G.story_values(rng, rng.choice(W.SENTIMENTS), rng.choice(W.NAMES[gender]))
        words, _ = G.fill(frame, values)
        form = "poss" if frame.endswith("liked") else "subj"
        other = "male" if gender == "female" else "female"
        out.append(PronounPrompt(G.text(words), values["name"], gender,
                                 " " + W.PRONOUNS[gender][form], " " + W.PRONOUNS[other][form]))
    return out


# -- facts -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FactPrompt:
    prompt: str
    answer: str
    relation: str
    direction: str


PARAPHRASES = {  # phrasings the corpus never uses; all their words are in the vocabulary
    "capital": ("In {country} , the capital is {city}", "The capital city of {country} is {city}"),
    "sound": ("At the farm , the {animal} says {sound}",),
    "colour": ("The {thing} is {colour}",),
}


def fact_prompts(split: str = "train") -> list[FactPrompt]:
    """Every fact as prompt and answer: "train" as the corpus states it, "heldout" paraphrased."""
    _check_split(split, SPLITS)
    if split == "train":
        return [FactPrompt(G.text(s.words[:-2]), " " + s.words[-2], s.labels["relation"],
                           s.labels["direction"]) for s in G.fact_sentences()]
    rows = [("capital", dict(country=c, city=x)) for c, x in W.CAPITALS.items()]
    rows += [("sound", dict(animal=a, sound=x)) for a, x in W.ANIMAL_SOUNDS.items()]
    rows += [("colour", dict(thing=t, colour=x)) for t, x in W.THING_COLOURS.items()]
    out = []
    for relation, values in rows:
        for template in PARAPHRASES[relation]:
            words, _ = G.fill(template, values)
            out.append(FactPrompt(G.text(words[:-1]), " " + words[-1], relation, "paraphrase"))
    return out


@dataclass(frozen=True)
class ChangedFact:
    """A fact to teach by fine-tuning: "The capital of France is" -> new_answer " Lyon"."""

    prompt: str
    old_answer: str
    new_answer: str
    texts: tuple[str, ...]  # training sentences stating the new fact, forward and reverse


def changed_facts(n: int = 4, seed: int = 0) -> list[ChangedFact]:
    """n countries whose capital is moved to another city the model knows (a new task to learn)."""
    rng = random.Random(seed)
    out = []
    for country in rng.sample(W.COUNTRIES, n):
        city = W.OTHER_CITIES[country]
        texts = (f"The capital of {country} is {city}.", f"{city} is the capital of {country}.")
        out.append(ChangedFact(f"The capital of {country} is", " " + W.CAPITALS[country],
                               " " + city, texts))
    return out


# -- steering, embeddings, corpus ------------------------------------------------------------------
@dataclass(frozen=True)
class ContrastPair:
    """Two texts that differ only in one concept: plus has plus_label, minus has minus_label."""

    plus: str
    minus: str
    concept: str
    plus_label: str
    minus_label: str


CONTRASTS = {  # concept -> (frame, slot, plus words, minus words, plus label, minus label)
    "sentiment": ("{name} was {x} at the {place} .", W.FEELINGS["positive"],
                  W.FEELINGS["negative"], "positive", "negative"),
    "gender": ("{x} went to the {place} .", ("She",), ("He",), "female", "male"),
    "colour": ("{name} found a {x} {object} .", ("red",), ("blue",), "red", "blue"),
    "place": ("{name} went to the {x} .", ("beach",), ("school",), "beach", "school"),
}


def contrast_pairs(concept: str, n: int = 16, seed: int = 0) -> list[ContrastPair]:
    """n pairs for a steering vector: "sentiment", "gender", "colour" or "place" (see CONTRASTS)."""
    if concept not in CONTRASTS:
        raise ValueError(f"concept must be one of {tuple(CONTRASTS)}, not {concept!r}")
    frame, plus_words, minus_words, plus_label, minus_label = CONTRASTS[concept]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        values = G.story_values(rng, "positive")
        plus, _ = G.fill(frame, {**values, "x": plus_words[i % len(plus_words)]})
        minus, _ = G.fill(frame, {**values, "x": minus_words[i % len(minus_words)]})
        out.append(ContrastPair(G.text(plus), G.text(minus), concept, plus_label, minus_label))
    return out


def token_groups() -> dict[str, tuple[str, ...]]:
    """Category -> its words as tokens with a leading space (" Mary"), for embeddings and SAEs."""
    sp = lambda words: tuple(" " + w for w in words)  # noqa: E731
    return {
        "female names": sp(W.FEMALE_NAMES), "male names": sp(W.MALE_NAMES),
        "colours": sp(W.COLOURS), "places": sp(W.PLACES), "objects": sp(W.OBJECTS),
        "animals": sp(W.ANIMALS), "countries": sp(W.COUNTRIES), "capitals": sp(W.CAPITALS.values()),
        "digits": sp(W.DIGITS),
        "positive words": sp(W.FEELINGS["positive"] + W.JUDGEMENTS["positive"]),
        "negative words": sp(W.FEELINGS["negative"] + W.JUDGEMENTS["negative"]),
    }


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    """n training-style documents as text (every family except random ids), for SAEs and replay."""
    return [text for _, text in corpus_documents(n, seed)]
