"""A one-line rule over the world's labels: the learner's explanation of a neuron, made checkable.

    female name                        the token is a female name
    colour or place                    either
    name and not sentence start        a name anywhere but at the start of a sentence
    after article                      the token right after "a", "an" or "the"
    word red                           exactly the word "red" (any case)
    (positive word or feeling) and story

Grammar (case does not matter; plural labels are accepted: "colours", "names"):

    rule   := or
    or     := and ("or" and)*
    and    := unary ("and" unary)*
    unary  := "not" unary | "after" unary | "(" or ")" | atom
    atom   := LABEL | "word" WORD

LABEL is one of core.interp.neurons.labels.LABELS. The rule is parsed into a small tree of frozen
dataclasses and evaluated over boolean arrays: nothing is ever passed to Python's eval, and a rule is
limited to MAX_CHARS characters and MAX_TERMS atoms. A rule that cannot be read raises RuleError
with what to fix.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

from core.interp.neurons.labels import LABELS, LabelledTokens

MAX_CHARS = 200
MAX_TERMS = 12
KEYWORDS = ("and", "or", "not", "after", "word")
ALIASES = {"color": "colour", "colors": "colour", "people": "name", "person": "name",
           "numbers": "digit", "number": "digit", "sounds": "animal sound", "the": "article"}


class RuleError(ValueError):
    """A rule that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class Label:
    name: str


@dataclass(frozen=True)
class Word:
    word: str


@dataclass(frozen=True)
class Not:
    inner: object


@dataclass(frozen=True)
class After:
    inner: object


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    parts: tuple


@dataclass(frozen=True)
class Rule:
    text: str  # as typed (stripped)
    tree: object

    def __str__(self) -> str:
        return self.text


_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_LABEL_WORDS = {tuple(label.split()): label for label in LABELS}
_MAX_LABEL_WORDS = max(len(k) for k in _LABEL_WORDS)


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _TOKEN.findall(text)
        self.i = 0
        self.terms = 0

    def peek(self) -> str | None:
        return self.tokens[self.i].lower() if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> object:
        tree = self.parse_or()
        if self.peek() is not None:
            raise RuleError(f"Unexpected {self.tokens[self.i]!r} after a complete rule: join rules with "
                            "'and' or 'or'.")
        return tree

    def parse_or(self):
        parts = [self.parse_and()]
        while self.peek() == "or":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def parse_and(self):
        parts = [self.parse_unary()]
        while self.peek() == "and":
            self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def parse_unary(self):
        tok = self.peek()
        if tok is None:
            raise RuleError("The rule ends too early: a label is missing after the last word.")
        if tok == "not":
            self.take()
            return Not(self.parse_unary())
        if tok == "after":
            self.take()
            return After(self.parse_unary())
        if tok == "(":
            self.take()
            inner = self.parse_or()
            if self.peek() != ")":
                raise RuleError("A '(' is never closed: add the matching ')'.")
            self.take()
            return inner
        if tok == ")":
            raise RuleError("A ')' without a matching '('.")
        return self.parse_atom()

    def parse_atom(self):
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise RuleError(f"The rule has more than {MAX_TERMS} labels: keep it to one line of idea.")
        if self.peek() == "word":
            self.take()
            if self.peek() in (None, "(", ")"):
                raise RuleError("'word' needs the word to match, e.g. 'word red'.")
            return Word(self.take().strip("'\"").lower())
        # longest run of words that names a label ("animal sound" before "animal")
        for n in range(_MAX_LABEL_WORDS, 0, -1):
            words = [t.lower() for t in self.tokens[self.i: self.i + n]]
            if len(words) < n or words[0] in KEYWORDS or any(w in ("(", ")") for w in words):
                continue
            for candidate in (tuple(words), (*words[:-1], _singular(words[-1]))):
                key = tuple(ALIASES.get(" ".join(candidate), " ".join(candidate)).split())
                if key in _LABEL_WORDS:
                    self.i += n
                    return Label(_LABEL_WORDS[key])
        word = self.tokens[self.i]
        close = difflib.get_close_matches(word.lower(), LABELS, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise RuleError(f"Unknown label {word!r}.{hint} Labels: {', '.join(LABELS)}; or 'word X' for one "
                        "exact word.")


def parse_rule(text: str) -> Rule:
    """Parse a rule (see the module docstring); raises RuleError with what to fix."""
    text = (text or "").strip()
    if not text:
        raise RuleError("Type a rule first, e.g. 'colour' or 'female name or female pronoun'.")
    if len(text) > MAX_CHARS:
        raise RuleError(f"The rule has {len(text)} characters; keep it under {MAX_CHARS} (one line).")
    return Rule(text, _Parser(text).parse())


def evaluate(rule: Rule | object, data: LabelledTokens) -> np.ndarray:
    """Where the rule holds: bool [n_tokens]."""
    node = rule.tree if isinstance(rule, Rule) else rule
    if isinstance(node, Label):
        return data.labels[node.name]
    if isinstance(node, Word):
        return np.array([w.lower() == node.word for w in data.words], dtype=bool)
    if isinstance(node, Not):
        return ~evaluate(node.inner, data)
    if isinstance(node, After):
        return data.previous(evaluate(node.inner, data))
    if isinstance(node, And):
        out = evaluate(node.parts[0], data)
        for part in node.parts[1:]:
            out = out & evaluate(part, data)
        return out
    if isinstance(node, Or):
        out = evaluate(node.parts[0], data)
        for part in node.parts[1:]:
            out = out | evaluate(part, data)
        return out
    raise TypeError(f"not a rule node: {node!r}")
