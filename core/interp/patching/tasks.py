"""Behaviours as clean / corrupted pairs: the raw material of every patching experiment.

A behaviour is measured on pairs of prompts with the same number of tokens that differ in the few
tokens that decide the answer:

- IOI: clean "When Mary and John went to the store, John gave a drink to" (answer " Mary"),
  corrupted with the names swapped in the second clause ("..., Mary gave a drink to": now " John").
- Induction: clean is BOS, random tokens x, then the first tokens of x again, so the next token (B)
  is predictable only by copying what followed the last token (A) last time; corrupted moves the
  earlier A to another place (a fresh token takes its spot), so copying predicts the token after
  the moved A instead (D). Same tokens, same length; only where A sits changes, which is exactly
  what a previous-token head writes and an induction head's key reads.
- Facts: "The capital of France is" (" Paris") against "The capital of Italy is" (" Rome").
- Pronouns: "Mary was happy because" (" she") against "John was happy because" (" he").
- Your own pair: two prompts of the same token length, a right and a wrong answer word.

Each row of a task holds a clean prompt, its corrupted twin and two answer tokens (right for the
clean prompt, right for the corrupted one). Every row of a batch has the same token length and the
same template, so position p means the same thing in every row and a patch at position p can be
averaged over the batch.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch

from core.models import HookedLM
from core.world import world as W
from core.world.datasets import fact_prompts, ioi_prompts

BEHAVIOURS = ("ioi", "induction", "facts", "pronouns", "custom")
MAX_CUSTOM_TOKENS = 48  # a pair of your own; every patched run is a batch row, so keep prompts short
INDUCTION_HALF, INDUCTION_SHOWN, INDUCTION_MOVED_TO = 10, 6, 2  # first copy; tokens repeated; where A moves


class PairError(ValueError):
    """A clean / corrupted pair the page cannot use; the message says why and what to change."""


@dataclass(frozen=True)
class PatchingTask:
    """clean, corrupt: LongTensor [batch, pos]; answers: [batch, 2] = (right for clean, right for
    corrupted); labels: one per position of row 0 ("3 ' Mary' (IO)")."""

    behaviour: str
    clean: torch.Tensor
    corrupt: torch.Tensor
    answers: torch.Tensor
    labels: tuple[str, ...]
    roles: dict  # role -> position, e.g. {"IO": 2, "S1": 4, "S2": 10, "end": 14}
    clean_text: str  # row 0, for display
    corrupt_text: str
    right: str  # row 0's answer words
    wrong: str
    about: str  # one sentence: how the pair was built

    @property
    def n_batch(self) -> int:
        return int(self.clean.shape[0])

    @property
    def n_pos(self) -> int:
        return int(self.clean.shape[1])

    def differing_positions(self) -> list[int]:
        """Positions where some clean row differs from its corrupted twin."""
        return torch.nonzero((self.clean != self.corrupt).any(0)).flatten().tolist()


def position_labels(str_tokens: list[str], roles: dict) -> tuple[str, ...]:
    """"p 'token'" per position, with the role name where one is known: "10 ' John' (S2)"."""
    by_pos = {}
    for role, pos in roles.items():
        by_pos.setdefault(pos, []).append(role)
    return tuple(f"{p} {t!r}" + (f" ({'/'.join(by_pos[p])})" if p in by_pos else "")
                 for p, t in enumerate(str_tokens))


def _answer_id(lm: HookedLM, word: str, what: str) -> int:
    tid = lm.single_token_id(word)
    if tid is None:
        raise PairError(f"The {what} {word!r} is not a single token for this model (mind the leading space: "
                        "' Mary' inside a sentence). Pick a word that is one token.")
    return tid


def _unknown(lm: HookedLM, texts) -> list[str]:
    return sorted({w for t in texts for w in lm.unknown_words(t)})


def _build(lm: HookedLM, behaviour: str, rows: list[tuple[str, str, str, str]], roles_of, about: str,
           min_rows: int = 1) -> PatchingTask:
    """Tokenize (clean, corrupt, right, wrong) rows; keep rows whose pair has one common token length
    (the most frequent) and single-token answers; roles_of(str_tokens) names positions of row 0."""
    unknown = _unknown(lm, [t for r in rows for t in r[:2]])
    if unknown:
        raise PairError(f"This model does not know these words of the {behaviour} prompts: "
                        f"{', '.join(unknown[:8])}. Pick induction or type a pair of your own.")
    kept = []
    for clean, corrupt, right, wrong in rows:
        a, b = lm.to_tokens(clean)[0], lm.to_tokens(corrupt)[0]
        r, w = lm.single_token_id(right), lm.single_token_id(wrong)
        if len(a) == len(b) and r is not None and w is not None and r != w:
            kept.append((a, b, r, w, clean, corrupt, right, wrong))
    if not kept:
        raise PairError(f"On this model's tokenizer no {behaviour} pair keeps the same token length with "
                        "one-token answers. Pick induction or type a pair of your own.")
    lengths = [len(k[0]) for k in kept]
    common = max(set(lengths), key=lengths.count)
    kept = [k for k in kept if len(k[0]) == common]
    if len(kept) < min_rows:
        raise PairError(f"Only {len(kept)} {behaviour} pairs tokenize alike on this model.")
    clean = torch.stack([k[0] for k in kept])
    corrupt = torch.stack([k[1] for k in kept])
    answers = torch.tensor([[k[2], k[3]] for k in kept])
    str_tokens = lm.to_str_tokens(clean[0])
    roles = roles_of(str_tokens, kept[0])
    return PatchingTask(behaviour, clean, corrupt, answers, position_labels(str_tokens, roles), roles,
                        kept[0][4], kept[0][5], kept[0][6], kept[0][7], about)


def _find(str_tokens: list[str], word: str, nth: int = 0) -> int | None:
    hits = [i for i, t in enumerate(str_tokens) if t.strip() == word.strip()]
    return hits[nth] if len(hits) > nth else None


def ioi_task(lm: HookedLM, n: int = 8, seed: int = 0) -> PatchingTask:
    """IOI with the names swapped: the corrupted prompt repeats the other name, so its answer flips."""
    pool = ioi_prompts(100 * n, seed, "all")  # about 1 in 72 shares the first one's template
    first = pool[0]
    same = [p for p in pool if (p.intro, p.action, p.io_first) == (first.intro, first.action, first.io_first)]
    rows = []
    for p in same[:n]:
        swapped = re.sub(rf"{re.escape(p.c)}\b", p.io, p.corrupt, count=1)
        rows.append((p.clean, swapped, p.io, p.s))

    def roles(str_tokens, row):
        io, s = row[6], row[7]
        found = {"IO": _find(str_tokens, io), "S1": _find(str_tokens, s), "S2": _find(str_tokens, s, 1),
                 "end": len(str_tokens) - 1}
        return {k: v for k, v in found.items() if v is not None}
    return _build(lm, "IOI", rows, roles,
                  "Clean: the subject is named twice, so the answer is the other name (IO). Corrupted: the "
                  "second mention names the IO instead, so the answer flips to the subject.")


def fact_task(lm: HookedLM, n: int = 8, relation: str = "capital", seed: int = 0) -> PatchingTask:
    """A fact against another fact of the same kind: "The capital of France is" vs "... Italy is"."""
    facts = [f for f in fact_prompts("train") if f.relation == relation and f.direction == "forward"]
    if len(facts) < 2:
        raise PairError(f"No facts of the relation {relation!r}.")
    random.Random(seed).shuffle(facts)
    facts = facts[: n + 1] if n + 1 <= len(facts) else facts
    pairs = zip(facts, facts[1:] + facts[:1], strict=True)  # each fact against the next one
    rows = [(a.prompt, b.prompt, a.answer, b.answer) for a, b in pairs][:n]

    def roles(str_tokens, row):
        clean, corrupt = row[0].tolist(), row[1].tolist()
        diff = [i for i, (x, y) in enumerate(zip(clean, corrupt, strict=True)) if x != y]
        return {"subject": diff[0], "end": len(str_tokens) - 1} if diff else {"end": len(str_tokens) - 1}
    return _build(lm, "facts", rows, roles,
                  "Clean and corrupted name a different subject of the same relation, so each has its own "
                  "answer; the logit difference is right answer minus the corrupted prompt's answer.")


PRONOUN_FRAME = "{name} was {feel} because"


def pronoun_task(lm: HookedLM, n: int = 8, seed: int = 0) -> PatchingTask:
    """A name whose gender decides the pronoun, against a name of the other gender."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        gender = ("female", "male")[i % 2]
        other = "male" if gender == "female" else "female"
        name, swap = rng.choice(W.NAMES[gender]), rng.choice(W.NAMES[other])
        feel = rng.choice(W.FEELINGS[rng.choice(W.SENTIMENTS)])
        rows.append((PRONOUN_FRAME.format(name=name, feel=feel), PRONOUN_FRAME.format(name=swap, feel=feel),
                     " " + W.PRONOUNS[gender]["subj"], " " + W.PRONOUNS[other]["subj"]))

    def roles(str_tokens, row):
        return {"name": 1, "end": len(str_tokens) - 1}
    return _build(lm, "pronouns", rows, roles,
                  "Clean and corrupted differ only in the name, of the other gender; the answer is the "
                  "pronoun that agrees with it.")


def _bos(lm: HookedLM) -> int:
    t = lm.tokenizer
    return t.bos_token_id if t.bos_token_id is not None else t.eos_token_id


def _dotted(lm: HookedLM, tokens: torch.Tensor) -> str:
    """Random tokens shown one by one ("kite · Oslo · 7"): decoded together they would run into each other."""
    return " · ".join(t.strip() or repr(t) for t in lm.to_str_tokens(tokens)[1:])


def induction_task(lm: HookedLM, n: int = 8, half_len: int = INDUCTION_HALF, shown: int = INDUCTION_SHOWN,
                   moved_to: int = INDUCTION_MOVED_TO, seed: int = 0) -> PatchingTask:
    """Clean: BOS, x_1..x_h, x_1..x_s; the last token A = x_s occurred before, followed by B = x_{s+1}.
    Corrupted: the earlier A is replaced by a fresh token and A is written at position `moved_to`
    instead, so copying now predicts D = x_{moved_to + 1}. Right answer B, wrong answer D."""
    if not 1 <= moved_to < shown - 1 or shown >= half_len:
        raise PairError("The moved A must sit before the earlier A, which must sit inside the first copy.")
    if 1 + half_len + shown > lm.cfg.n_ctx:
        raise PairError(f"The induction prompt needs {1 + half_len + shown} tokens; this model reads "
                        f"{lm.cfg.n_ctx}.")
    vocab = min(lm.cfg.d_vocab, len(lm.tokenizer))
    banned = set(lm.tokenizer.all_special_ids) | {_bos(lm)}
    allowed = [i for i in range(vocab) if i not in banned]
    if len(allowed) < half_len + 1:
        raise PairError("This model's vocabulary is too small for a random sequence without repeats.")
    rng = random.Random(seed)
    clean, corrupt, answers = [], [], []
    for _ in range(n):
        picks = rng.sample(allowed, half_len + 1)  # no token repeats: nothing else to copy
        x, fresh = picks[:half_len], picks[half_len]
        a = x[shown - 1]
        y = list(x)
        y[shown - 1], y[moved_to - 1] = fresh, a  # 1-indexed positions shown and moved_to
        clean.append([_bos(lm), *x, *x[:shown]])
        corrupt.append([_bos(lm), *y, *x[:shown]])
        answers.append([x[shown], x[moved_to]])
    clean_t, corrupt_t = torch.tensor(clean), torch.tensor(corrupt)
    str_tokens = lm.to_str_tokens(clean_t[0])
    roles = {"A moved here": moved_to, "D": moved_to + 1, "A (earlier)": shown, "B": shown + 1,
             "A": len(str_tokens) - 1}
    return PatchingTask(
        "induction", clean_t, corrupt_t, torch.tensor(answers), position_labels(str_tokens, roles), roles,
        _dotted(lm, clean_t[0]), _dotted(lm, corrupt_t[0]), lm.to_string([answers[0][0]]),
        lm.to_string([answers[0][1]]),
        f"Clean: {half_len} random tokens, then their first {shown} again. The last token A occurred before, "
        "followed by B: only copying predicts B. Corrupted: the earlier A is replaced by a fresh token and "
        f"written at position {moved_to} instead, so copying predicts the token after it (D). The tokens "
        "themselves are the same random tokens: only *where* A sits changes.")


def custom_task(lm: HookedLM, clean_text: str, corrupt_text: str, right: str, wrong: str) -> PatchingTask:
    """Your own pair; raises PairError with a message a learner can act on."""
    if not (clean_text or "").strip():
        raise PairError("The clean prompt is empty: type the prompt whose behaviour you want to explain.")
    if not (corrupt_text or "").strip():
        raise PairError("The corrupted prompt is empty: type a prompt of the same token length that changes "
                        "the answer (e.g. swap one name).")
    if clean_text == corrupt_text:
        raise PairError("The two prompts are the same: change the token that should change the answer.")
    a, b = lm.to_tokens(clean_text)[0], lm.to_tokens(corrupt_text)[0]
    if len(a) > MAX_CUSTOM_TOKENS or len(b) > MAX_CUSTOM_TOKENS:
        raise PairError(f"Keep each prompt under {MAX_CUSTOM_TOKENS} tokens (they have {len(a)} and "
                        f"{len(b)}): every patch is one more run of the model.")
    if len(a) != len(b):
        raise PairError(
            f"The prompts have different token lengths ({len(a)} and {len(b)}), so position p would mean "
            f"different things. Clean: {lm.to_str_tokens(a)}; corrupted: {lm.to_str_tokens(b)}. Change "
            "words for words that are one token each.")
    r, w = _answer_id(lm, right, "right answer"), _answer_id(lm, wrong, "wrong answer")
    if r == w:
        raise PairError("The right and the wrong answer are the same token: the logit difference would be 0.")
    str_tokens = lm.to_str_tokens(a)
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    roles = {"changed": diff[0], "end": len(a) - 1}
    return PatchingTask("custom", a[None], b[None], torch.tensor([[r, w]]),
                        position_labels(str_tokens, roles), roles, clean_text, corrupt_text, right, wrong,
                        "Your own pair: the clean prompt should make the right answer likely, the corrupted "
                        "one the wrong answer.")


def build_task(lm: HookedLM, behaviour: str, *, n: int = 8, seed: int = 0, custom: tuple | None = None
               ) -> PatchingTask:
    """The task for a behaviour of BEHAVIOURS (custom: (clean, corrupt, right, wrong))."""
    if behaviour == "ioi":
        return ioi_task(lm, n, seed)
    if behaviour == "induction":
        return induction_task(lm, n, seed=seed)
    if behaviour == "facts":
        return fact_task(lm, n, seed=seed)
    if behaviour == "pronouns":
        return pronoun_task(lm, n, seed)
    if behaviour == "custom":
        return custom_task(lm, *(custom or ("", "", "", "")))
    raise PairError(f"Unknown behaviour {behaviour!r}; pick one of {', '.join(BEHAVIOURS)}.")
