"""New tasks to teach the bundled model by fine-tuning, written by the same grammar as its corpus.

Each task is training documents plus probes: prompts whose next token shows whether the task was
learned. Because we wrote the world, we know exactly what the model believed before, so the page
can show "before: Paris, after: Lyon" and check what else moved.

- changed fact: some countries get a new capital, a city the model knows only as "a city in ..."
  ("The capital of France is Lyon." and "Lyon is the capital of France."). Learned when the
  forward prompt "The capital of France is" predicts " Lyon". The old fact is overwritten, not
  added to: a pure case of editing knowledge.
- new story style: every sentence of a story after the first starts with "Then" ("Mary went to the
  park. Then she was happy ..."). Learned when " Then" is the top prediction after a full stop in a
  story. A habit of form, not a fact: it touches every story the model writes.
- new word: the bundled tokenizer's vocabulary is closed (every word is one token), so a new word
  must reuse a token. We take a city name the model has only seen in "Kazan is a city in Russia"
  and make it a girl's name in stories. Learned when "Kazan was happy because" continues with
  " she", and when Kazan can be the answer of an indirect-object sentence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.world import grammar as G
from core.world import world as W
from core.world.datasets import changed_facts
from core.world.tokenizer import piece_ids

TASKS = {
    "changed_fact": "A changed fact: some countries get a new capital",
    "story_style": "A new story style: every sentence starts with 'Then'",
    "new_word": "A new word: 'Kazan' becomes a girl's name",
}
NEW_NAME = "Kazan"


@dataclass(frozen=True)
class Probe:
    """prompt -> target (" Lyon"); before is what the original world says (" Paris"), if anything."""

    prompt: str
    target: str
    before: str | None = None


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    texts: tuple[str, ...]  # training documents (each becomes BOS + text)
    probes: tuple[Probe, ...]
    touched: tuple[str, ...] = ()  # words whose original facts the task overrides


def _changed_fact(n_items: int, seed: int) -> Task:
    facts = changed_facts(n_items, seed)
    sentences = [t for f in facts for t in f.texts]
    rng = random.Random(seed)
    # documents of several fact sentences, as the corpus writes its "facts" documents
    texts = tuple(" ".join(rng.sample(sentences, rng.randint(min(2, len(sentences)), len(sentences))))
                  for _ in range(16 * n_items))
    probes = []
    for f in facts:
        country = f.prompt.removeprefix("The capital of ").removesuffix(" is")
        probes.append(Probe(f.prompt, f.new_answer, f.old_answer))
        probes.append(Probe(f"{f.new_answer.strip()} is the capital of", " " + country, None))
    touched = tuple(w for f in facts for w in (f.prompt.split()[-2], f.old_answer.strip(),
                                                 f.new_answer.strip()))
    return Task("changed_fact", TASKS["changed_fact"], texts, tuple(probes), touched)


def _then_sentence(words: tuple[str, ...], known: dict[str, int]) -> tuple[str, ...]:
    """"She was happy ." -> "Then she was happy ."; unchanged if it already starts with Then or the
    lower-case first word is not in the vocabulary (" when" is not: the corpus only says "When")."""
    first = words[0]
    if first == "Then":
        return words
    lower = first if first in W.GENDER_OF else first.lower()
    if " " + lower not in known:
        return words
    return ("Then", lower, *words[1:])


def _story_style(n_items: int, seed: int) -> Task:
    rng = random.Random(seed)
    known = piece_ids()
    texts, probes = [], []
    for i in range(max(8, 8 * n_items) + 16):
        sentences = G.story(rng)
        words = list(sentences[0].words)
        for s in sentences[1:]:
            words += _then_sentence(s.words, known)
        text = G.text(words)
        if i < 16:  # probes: the opening and one new-style sentence, then the next word
            second = _then_sentence(sentences[1].words, known)
            probes.append(Probe(G.text((*sentences[0].words, *second)), " Then", None))
        else:
            texts.append(text)
    return Task("story_style", TASKS["story_style"], tuple(texts), tuple(probes))


NEW_WORD_PROBES = ("{name} was {feel} because", "When {name} got home ,", "{name} liked",
                   "{name} felt {feel} . Then")


def _new_word(n_items: int, seed: int) -> Task:
    rng = random.Random(seed)
    texts = []
    for _ in range(max(8, 8 * n_items)):
        mood = rng.choice(W.SENTIMENTS)
        stand_in = rng.choice(W.FEMALE_NAMES)  # a story about her, then the name is swapped
        sentences = [G.story_sentence(rng.choice(G.STORY_OPENINGS), G.story_values(rng, mood, stand_in))]
        sentences += [G.story_sentence(rng.choice(G.STORY_BODY), G.story_values(rng, mood, stand_in))
                      for _ in range(rng.randint(3, 6))]
        words = [NEW_NAME if w == stand_in else w for s in sentences for w in s.words]
        texts.append(G.text(words))
        io_side = rng.choice(W.MALE_NAMES)  # and she is the indirect object of an IOI sentence
        sent = G.ioi_sentence(rng, rng.choice(G.IOI_TRAIN), names=(stand_in, io_side))
        texts.append(G.text([NEW_NAME if w == stand_in else w for w in sent.words]))
    probes = []
    for i, frame in enumerate(NEW_WORD_PROBES):
        form = "poss" if frame.endswith("liked") else "subj"
        words, _ = G.fill(frame, {"name": NEW_NAME, "feel": W.FEELINGS["positive"][i]})
        probes.append(Probe(G.text(words), " " + W.PRONOUNS["female"][form], None))
    for i in range(4):  # "When Kazan and John went to the park, John gave a ball to" -> " Kazan"
        s = W.MALE_NAMES[i]
        a, b = (NEW_NAME, s) if i % 2 else (s, NEW_NAME)
        words, _ = G.fill("When {A} and {B} went to the {place} , {S} gave a {object} to",
                          {"A": a, "B": b, "S": s, "place": W.PLACES[i], "object": W.OBJECTS[i]})
        probes.append(Probe(G.text(words), " " + NEW_NAME, None))
    return Task("new_word", TASKS["new_word"], tuple(texts), tuple(probes), (NEW_NAME,))


def make_task(key: str, n_items: int = 4, seed: int = 0) -> Task:
    """A task by key (see TASKS); n_items: facts to change (or the size of the story set)."""
    builders = {"changed_fact": _changed_fact, "story_style": _story_style, "new_word": _new_word}
    if key not in builders:
        raise ValueError(f"task must be one of {tuple(TASKS)}, not {key!r}")
    return builders[key](n_items, seed)
