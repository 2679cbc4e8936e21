"""The grammar that writes the bundled model's training corpus, one seeded document at a time.

A document is a list of sentences from one family:

- story: one main character, named first and then called by name or pronoun. The pronoun is the
  only thing that reveals the character's gender (no "girl" or "boy"), so predicting "she" after
  "Mary was happy because" forces the model to store the gender of every name. A story has one mood:
  all its feelings, actions and judgements are positive, or all are negative.
- ioi: indirect-object sentences, "When Mary and John went to the store, John gave a drink to Mary."
  The answer is the name that appeared once. Intro and action templates combine freely, except the
  pairs in IOI_HELDOUT, which never appear in training: evaluation uses exactly those.
- repeat_words: a run of random words, then the same run again (the model learns to copy).
- facts: capitals (and their reverse), animal sounds, colours of things, other cities.
- arithmetic: one-digit sums and differences with one-digit answers, and counting up or down.
(Repeated random token ids, the sixth family, are made from token ids in core.world.corpus.)

Templates are strings of space-separated words; a word in braces is a slot. `fill` returns the words
and where each slot landed, which is how datasets know the position of the name, the colour, etc.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from core.world import world as W

IOI_INTROS = (
    "When {A} and {B} went to the {place} ,",
    "After {A} and {B} arrived at the {place} ,",
    "While {A} and {B} were at the {place} ,",
    "Once {A} and {B} got to the {place} ,",
    "As {A} and {B} walked to the {place} ,",
    "Then {A} and {B} had lunch at the {place} , and",
)
IOI_ACTIONS = (
    "{S} gave {a} {object} to",
    "{S} handed {a} {object} to",
    "{S} passed the {object} to",
    "{S} brought {a} {object} to",
    "{S} sent {a} {object} to",
    "{S} showed the {object} to",
)
IOI_HELDOUT = frozenset((i, (i + 3) % len(IOI_ACTIONS)) for i in range(len(IOI_INTROS)))
IOI_TRAIN = tuple((i, j) for i in range(len(IOI_INTROS)) for j in range(len(IOI_ACTIONS))
                  if (i, j) not in IOI_HELDOUT)

STORY_OPENINGS = (
    "{name} went to the {place} .",
    "One day , {name} went to the {place} .",
    "In the morning , {name} walked to the {place} .",
    "{name} was at the {place} .",
    "Today , {name} and {p} {animal} went to the {place} .",
)
STORY_BODY = (
    "{N} was {feel} because {s} {event} {a} {colour} {object} .",
    "{name} was {feel} because {s} {event} {a} {colour} {object} .",
    "{N} {event} {a} {colour} {object} at the {place} .",
    "At the {place} , {n} saw a {animal} . The {animal} said {sound} .",
    "{N} {act} .",
    "{N} felt {feel} .",
    "{name} liked {p} {colour} {object} .",
    "The {object} was {colour} .",
    "The day was {judge} .",
    "When {name} got home , {s} was {feel} .",
    "{N} gave the {object} to {M} , and {s2} was {feel} .",
    "{N} told {M} that the {place} was {judge} .",
    "Then {n} went to the {place} with {M} .",
    "{name} said that {s} was {feel} .",
    "{name} {act} because {s} {event} {a} {object} .",
    "{name} went home , and {s} {act} .",
)
# A story may also open with any body sentence about its character (called by name there), so
# that prompts such as "Mary was happy because" or "When Mary got home," at the very start of a
# text are familiar, with the name in its bare first-word form ("Mary") as well.
STORY_FIRST = STORY_OPENINGS + tuple(t for t in STORY_BODY
                                     if any(k in t for k in ("{N}", "{n}", "{name}")))
FACT_TEMPLATES = {  # relation -> (forward, reverse); the answer is always the last slot
    "capital": ("The capital of {country} is {city} .", "{city} is the capital of {country} ."),
    "city": ("{city} is a city in {country} .", None),
    "sound": ("The {animal} says {sound} .", "The animal that says {sound} is the {animal} ."),
    "colour": ("The colour of the {thing} is {colour} .",
               "{Colour} is the colour of the {thing} ."),
}
FAMILY_WEIGHTS = {"story": 0.30, "ioi": 0.20, "repeat_words": 0.08, "random_ids": 0.17,
                  "facts": 0.15, "arithmetic": 0.10}


@dataclass(frozen=True)
class Sentence:
    """Words of one sentence (no spaces), its family, labels, and the word index of each slot."""

    words: tuple[str, ...]
    family: str
    labels: dict = field(default_factory=dict)
    slots: dict = field(default_factory=dict)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def fill(template: str, values: dict) -> tuple[tuple[str, ...], dict]:
    """Fill the {slots} of a template; returns (words, slot name -> index of its first use)."""
    words, slots = [], {}
    for part in template.split():
        if part.startswith("{") and part.endswith("}"):
            key = part[1:-1]
            slots.setdefault(key, len(words))
            words.append(values[key])
        else:
            words.append(part)
    for i, part in enumerate(template.split()):
        if part == "{a}":  # the article agrees with the word after it: "an apple", "a red apple"
            words[i] = article(words[i + 1])
    return tuple(words), slots


def template_words() -> set[str]:
    """Every literal (non-slot) word used by any template."""
    templates = [*IOI_INTROS, *IOI_ACTIONS, *STORY_OPENINGS, *STORY_BODY]
    templates += [t for pair in FACT_TEMPLATES.values() for t in pair if t]
    return {w for t in templates for w in t.split() if not w.startswith("{")}


def all_words() -> set[str]:
    """The full word list of the world: lexicon plus template words (the tokenizer's vocabulary)."""
    return W.lexicon_words() | template_words() | {"a", "an"}


# -- families --------------------------------------------------------------------------------------
def ioi_sentence(rng: random.Random, combo: tuple[int, int], names=None, io_first=None) -> Sentence:
    """One IOI sentence: intro combo[0] with action combo[1]; labels io, s, template ids."""
    pool = names or (W.FEMALE_NAMES + W.MALE_NAMES)
    io, s = rng.sample(pool, 2)
    io_first = rng.random() < 0.5 if io_first is None else io_first
    a, b = (io, s) if io_first else (s, io)
    obj = rng.choice(W.OBJECTS)
    values = dict(A=a, B=b, S=s, place=rng.choice(W.PLACES), object=obj, a="a")
    template = f"{IOI_INTROS[combo[0]]} {IOI_ACTIONS[combo[1]]}"
    words, slots = fill(template, values)
    labels = dict(io=io, s=s, intro=combo[0], action=combo[1], io_first=io_first)
    return Sentence((*words, io, "."), "ioi", labels, {**slots, "IO": len(words)})


def story_values(rng: random.Random, mood: str, name: str | None = None) -> dict:
    """Slot values for one story sentence; a fresh draw of everything except the character."""
    name = name or rng.choice(W.FEMALE_NAMES + W.MALE_NAMES)
    gender = W.GENDER_OF[name]
    other = rng.choice([m for m in W.FEMALE_NAMES + W.MALE_NAMES if m != name])
    pron = W.PRONOUNS[gender]
    use_pronoun = rng.random() < 0.4
    obj, animal = rng.choice(W.OBJECTS), rng.choice(W.ANIMALS)
    return dict(
        name=name, gender=gender, mood=mood, M=other, s2=W.PRONOUNS[W.GENDER_OF[other]]["subj"],
        N=W.capitalize(pron["subj"]) if use_pronoun else name,
        n=pron["subj"] if use_pronoun else name, s=pron["subj"], o=pron["obj"], p=pron["poss"],
        feel=rng.choice(W.FEELINGS[mood]), act=rng.choice(W.ACTIONS[mood]),
        judge=rng.choice(W.JUDGEMENTS[mood]), event=rng.choice(W.EVENTS[mood]),
        colour=rng.choice(W.COLOURS), place=rng.choice(W.PLACES), object=obj, a="a",
        animal=animal, sound=W.ANIMAL_SOUNDS[animal],
    )


def story_sentence(template: str, values: dict) -> Sentence:
    words, slots = fill(template, values)
    keys = ("name", "gender", "mood", "colour", "place", "object", "animal")
    labels = {k: values[k] for k in keys if k in ("name", "gender", "mood") or k in slots}
    return Sentence(words, "story", labels, slots)


def story(rng: random.Random) -> list[Sentence]:
    mood = rng.choice(W.SENTIMENTS)
    name = rng.choice(W.FEMALE_NAMES + W.MALE_NAMES)
    values = story_values(rng, mood, name)
    first = story_sentence(rng.choice(STORY_FIRST), {**values, "N": name, "n": name})
    body = [story_sentence(rng.choice(STORY_BODY), story_values(rng, mood, name))
            for _ in range(rng.randint(3, 7))]
    return [first, *body]


def fact_sentences() -> list[Sentence]:
    """Every fact of the world as a sentence, forward and reverse; labels: relation, answer."""
    rows = []
    for country, capital in W.CAPITALS.items():
        rows.append(("capital", dict(country=country, city=capital)))
    for country, city in W.OTHER_CITIES.items():
        rows.append(("city", dict(country=country, city=city)))
    for animal, sound in W.ANIMAL_SOUNDS.items():
        rows.append(("sound", dict(animal=animal, sound=sound)))
    for thing, colour in W.THING_COLOURS.items():
        rows.append(("colour", dict(thing=thing, colour=colour, Colour=W.capitalize(colour))))
    out = []
    for relation, values in rows:
        forward, reverse = FACT_TEMPLATES[relation]
        for direction, template in (("forward", forward), ("reverse", reverse)):
            if template:
                words, slots = fill(template, values)
                labels = dict(relation=relation, direction=direction, answer=words[-2])
                out.append(Sentence(words, "facts", labels, slots))
    return out


_FACTS = fact_sentences()


def facts(rng: random.Random) -> list[Sentence]:
    return rng.sample(_FACTS, rng.randint(3, 8))


def arithmetic(rng: random.Random) -> list[Sentence]:
    out = []
    for _ in range(rng.randint(3, 7)):
        kind = rng.random()
        if kind < 0.4:
            a = rng.randint(0, 9)
            b = rng.randint(0, 9 - a)
            words, labels = (str(a), "+", str(b), "=", str(a + b), "."), dict(answer=str(a + b))
        elif kind < 0.8:
            a = rng.randint(0, 9)
            b = rng.randint(0, a)
            words, labels = (str(a), "-", str(b), "=", str(a - b), "."), dict(answer=str(a - b))
        else:
            n = rng.randint(3, 10)
            start = rng.randint(0, 10 - n)
            run = [str(d) for d in range(start, start + n)]
            words, labels = (*(run if rng.random() < 0.6 else run[::-1]), "."), dict(kind="count")
        out.append(Sentence(words, "arithmetic", labels))
    return out


_REPEAT_POOL = sorted(W.lexicon_words() - set(W.NO_SPACE_BEFORE) - set(W.SYMBOLS))


def repeat_words(rng: random.Random) -> list[Sentence]:
    run = tuple(rng.choice(_REPEAT_POOL) for _ in range(rng.randint(4, 24)))
    return [Sentence(run, "repeat_words"), Sentence(run, "repeat_words")]


def ioi(rng: random.Random) -> list[Sentence]:
    return [ioi_sentence(rng, rng.choice(IOI_TRAIN)) for _ in range(rng.randint(2, 4))]


FAMILIES = {"story": story, "ioi": ioi, "repeat_words": repeat_words, "facts": facts,
            "arithmetic": arithmetic}


def document(rng: random.Random, family: str) -> list[Sentence]:
    """One training document of a text family (every family but random_ids)."""
    return FAMILIES[family](rng)


def pieces(words, first: bool = True) -> list[str]:
    """Words -> token strings: a leading space on every word except the first and punctuation."""
    return [w if (first and i == 0) or w in W.NO_SPACE_BEFORE else " " + w
            for i, w in enumerate(words)]


def text(words) -> str:
    """The text of a word sequence: "When Mary and John went to the store, ..." """
    return "".join(pieces(words))


def document_words(sentences: list[Sentence]) -> list[str]:
    return [w for s in sentences for w in s.words]
