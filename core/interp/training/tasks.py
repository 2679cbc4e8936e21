"""The tasks a small transformer can be trained on here, each with its ground truth.

- induction: random tokens in which one segment of random length (8 to 20 by default) is followed
  at once by its own copy, at a random place. Only the copy can be predicted, and only by looking
  back: find the earlier occurrence of the current token and predict what followed it (an
  induction head). The random length and place remove every positional shortcut.
- fixed offset (the trap): the same copying, but the segment always has the same length and
  always starts right after BOS, so the copy is always the same distance back. A model can then
  predict the copy "by position" (attend to the token `period - 1` places back) without reading
  which token matched: it looks solved, but fails as soon as the distance changes.
- modular addition: "a + b =" -> (a + b) mod p, the grokking setting (Power et al., 2022; Nanda et
  al., 2023): a fixed share of all p^2 pairs is trained on, the rest is the test set. The loss
  counts only the answer.
- grammar: documents from the bundled world's own generator (core.world), restricted to the
  families you pick, packed into rows like the bundled model's corpus, with its tokenizer.
- custom: your own example strings, one per line, split into words (and punctuation) or into
  characters; the vocabulary is whatever they contain. A fifth of the examples (at least one) is
  held out when there are five or more.

Every task yields batches of token ids [batch, pos] that start with BOS, and a mask saying which
next-token predictions the loss counts (core.models.loss.next_token_loss).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from core.world import grammar as G
from core.world.corpus import document_ids
from core.world.tokenizer import build_tokenizer, piece_ids, vocabulary

TaskKind = Literal["induction", "fixed_offset", "modular_addition", "grammar", "custom"]
TASKS: tuple[TaskKind, ...] = ("induction", "fixed_offset", "modular_addition", "grammar", "custom")
BOS, UNK = "<bos>", "<unk>"
SPECIALS = (BOS, UNK)
TEST_SEED = 12_345  # the held-out data is the same whatever the training seed
TEST_SEQS = 128  # held-out sequences for the sequence tasks
GRAMMAR_FAMILIES = tuple(f for f in G.FAMILY_WEIGHTS if f != "random_ids")
MAX_CUSTOM_CHARS = 20_000  # typed examples: more than this is refused with a message
MAX_CUSTOM_VOCAB = 2_000  # distinct words or characters
MIN_HELDOUT_EXAMPLES = 5  # fewer examples than this: nothing is held out (the page says so)


class TaskError(ValueError):
    """The task cannot be built as asked; the message says why in words a learner can act on."""


@dataclass(frozen=True)
class TaskSettings:
    """What to train on. Only the fields of the chosen kind matter."""

    kind: TaskKind = "induction"
    vocab: int = 16  # induction / fixed_offset: number of distinct symbols
    n_ctx: int = 48  # sequence length (induction, fixed_offset, grammar, custom)
    min_segment: int = 8  # induction: the repeated segment's length is drawn from this range
    max_segment: int = 20
    copies: int = 1  # induction: how many copies follow the segment
    period: int = 12  # fixed_offset: the segment's length, so the copy is always this far back
    p: int = 53  # modular addition: the modulus (a prime gives the cleanest Fourier picture)
    train_fraction: float = 0.3  # modular addition: share of the p^2 pairs trained on
    families: tuple[str, ...] = ("repeat_words", "arithmetic")  # grammar
    text: str = ""  # custom: example strings, one per line
    level: Literal["word", "char"] = "word"  # custom

    def describe(self) -> str:
        if self.kind == "induction":
            return (f"induction: {self.vocab} symbols, {self.n_ctx} tokens, a segment of "
                    f"{self.min_segment}-{self.max_segment} tokens copied at a random place")
        if self.kind == "fixed_offset":
            return (f"fixed-offset copy: {self.vocab} symbols, {self.n_ctx} tokens, a {self.period}-token "
                    f"segment always at the start, copied right after it")
        if self.kind == "modular_addition":
            return f"modular addition mod {self.p}, {self.train_fraction:.0%} of the pairs trained on"
        if self.kind == "grammar":
            return f"the bundled grammar ({', '.join(self.families)}), {self.n_ctx} tokens"
        return f"your {self.level}-level examples, {self.n_ctx} tokens"


@dataclass(frozen=True)
class Batch:
    """tokens [batch, pos]; mask [batch, pos] (mask[:, i] counts the prediction of token i, as in
    next_token_loss) or None for every position; copy [batch, pos] marks the tokens only copying
    can predict (induction-type tasks); answer [batch] the position of the answer token (tasks
    with one answer per sequence)."""

    tokens: torch.Tensor
    mask: torch.Tensor | None = None
    copy: torch.Tensor | None = None
    answer: torch.Tensor | None = None


def word_tokenizer(pieces: list[str], level: Literal["word", "char", "symbol"]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over SPECIALS + pieces (ids in that order).

    "word": text splits into words and punctuation runs (tokenizers' Whitespace rule); "char": every
    character is a token and decoding joins them back; "symbol": split on spaces only."""
    vocab = {piece: i for i, piece in enumerate([*SPECIALS, *pieces])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    if level == "char":
        raw.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
        raw.decoder = decoders.Fuse()
    elif level == "word":
        raw.pre_tokenizer = pre_tokenizers.Whitespace()
    else:
        raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=BOS, unk_token=UNK,
                                   clean_up_tokenization_spaces=False)


def symbol_names(n: int) -> list[str]:
    """n short symbol names: a ... z, then a1 ... z1, ..."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [letters[i % 26] + (str(i // 26) if i >= 26 else "") for i in range(n)]


class Task:
    """A built task: its tokenizer, sequence length, and batches. Build one with build_task()."""

    kind: TaskKind
    settings: TaskSettings
    tokenizer: PreTrainedTokenizerFast
    n_ctx: int
    note: str = ""  # something the page should say about the data (e.g. nothing held out)

    @property
    def d_vocab(self) -> int:
        return len(self.tokenizer)

    @property
    def has_answers(self) -> bool:
        """Whether accuracy on an answer per sequence is measured (modular addition)."""
        return False

    def batches(self, seed: int, batch: int) -> Iterator[Batch]:
        raise NotImplementedError

    def test_batch(self) -> Batch:
        raise NotImplementedError


class CopyTask(Task):
    """induction and fixed_offset: random symbols with one segment followed by its own copy."""

    def __init__(self, settings: TaskSettings):
        s = self.settings = settings
        self.kind = s.kind
        self.n_ctx = s.n_ctx
        self.tokenizer = word_tokenizer(symbol_names(s.vocab), "symbol")
        self._test = self._sample(torch.Generator().manual_seed(TEST_SEED), TEST_SEQS)

    def _lengths_and_starts(self, gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        if s.kind == "fixed_offset":
            return torch.full((n,), s.period), torch.ones(n, dtype=torch.long)
        lengths = torch.randint(s.min_segment, s.max_segment + 1, (n,), generator=gen)  # [batch]
        room = self.n_ctx - (1 + s.copies) * lengths  # segment + copies fit after BOS: start in 1 .. room
        starts = 1 + (torch.rand(n, generator=gen) * room).long()  # [batch]
        return lengths, starts

    def _sample(self, gen: torch.Generator, n: int) -> Batch:
        low = len(SPECIALS)
        tokens = torch.randint(low, low + self.settings.vocab, (n, self.n_ctx), generator=gen)
        tokens[:, 0] = 0  # BOS
        lengths, starts = self._lengths_and_starts(gen, n)
        copies = self.settings.copies if self.settings.kind == "induction" else 1
        pos = torch.arange(self.n_ctx)[None, :]  # [1, pos]
        start, length = starts[:, None], lengths[:, None]
        in_copy = (pos >= start + length) & (pos < start + (1 + copies) * length)
        source = start + (pos - start).clamp_min(0) % length  # [batch, pos]: the original of each copy
        tokens = torch.where(in_copy, tokens.gather(1, source.clamp_max(self.n_ctx - 1)), tokens)
        # the copy's first token follows the segment's last, which never occurred before: only the
        # tokens after it can be found by looking back
        copy = in_copy & (pos > (starts + lengths)[:, None])
        return Batch(tokens, None, copy)

    def batches(self, seed: int, batch: int) -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(seed)
        while True:
            yield self._sample(gen, batch)

    def test_batch(self) -> Batch:
        return self._test


def modular_pairs(p: int, train_fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """All (a, b) pairs [p * p, 2], split into train and test by a seeded shuffle."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.flatten(), b.flatten()], dim=1)  # [p * p, 2]
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    n_train = max(1, min(p * p - 1, round(train_fraction * p * p)))
    return pairs[order[:n_train]], pairs[order[n_train:]]


class ModularAddition(Task):
    """BOS a + b = c with c = (a + b) mod p; numbers are the tokens "0" ... "p-1" (ids 2 .. p + 1)."""

    kind = "modular_addition"
    ANSWER_POS = 5  # BOS a + b = c: the answer is token 5

    def __init__(self, settings: TaskSettings):
        self.settings = settings
        p = settings.p
        self.tokenizer = word_tokenizer([str(i) for i in range(p)] + ["+", "="], "symbol")
        self.n_ctx = 6
        self.plus, self.equals = len(SPECIALS) + p, len(SPECIALS) + p + 1
        # the split is fixed (seed 0) so every run of one p and fraction is judged on the same pairs
        self.train_pairs, self.test_pairs = modular_pairs(p, settings.train_fraction)
        self._train = self._encode(self.train_pairs)
        self._test = self._encode(self.test_pairs)

    @property
    def has_answers(self) -> bool:
        return True

    def number_ids(self) -> torch.Tensor:
        """Token ids of the numbers 0 .. p - 1, in order (the rows of W_E the Fourier view reads)."""
        return torch.arange(len(SPECIALS), len(SPECIALS) + self.settings.p)

    def _encode(self, pairs: torch.Tensor) -> Batch:
        n, low, p = len(pairs), len(SPECIALS), self.settings.p
        a, b = pairs[:, 0], pairs[:, 1]
        tokens = torch.stack([torch.zeros(n, dtype=torch.long), low + a, torch.full((n,), self.plus),
                              low + b, torch.full((n,), self.equals), low + (a + b) % p], dim=1)
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, self.ANSWER_POS] = True
        return Batch(tokens, mask, None, torch.full((n,), self.ANSWER_POS))

    def batches(self, seed: int, batch: int) -> Iterator[Batch]:
        full = self._train
        n = full.tokens.shape[0]
        if batch >= n:  # full batch: every step sees every training pair
            while True:
                yield full
        gen = torch.Generator().manual_seed(seed)
        while True:
            idx = torch.randperm(n, generator=gen)[:batch]
            yield Batch(full.tokens[idx], full.mask[idx], None, full.answer[idx])

    def test_batch(self) -> Batch:
        return self._test

    def train_batch(self) -> Batch:
        return self._train


def pack(docs: Iterator[list[int]], n_rows: int, n_ctx: int) -> torch.Tensor:
    """Rows [n_rows, n_ctx] of whole documents (each starting with BOS), cut at the row's end, as
    the bundled corpus packs them (core.world.corpus)."""
    rows = torch.empty((n_rows, n_ctx), dtype=torch.long)
    for r in range(n_rows):
        row: list[int] = []
        while len(row) < n_ctx:
            row.extend(next(docs)[: n_ctx - len(row)])
        rows[r] = torch.tensor(row)
    return rows


class GrammarTask(Task):
    """Documents of the chosen families from the bundled world's generator, its tokenizer."""

    kind = "grammar"

    def __init__(self, settings: TaskSettings):
        self.settings = settings
        unknown = [f for f in settings.families if f not in GRAMMAR_FAMILIES]
        if not settings.families or unknown:
            raise TaskError(f"Pick at least one of the grammar's families ({', '.join(GRAMMAR_FAMILIES)})"
                            + (f"; {', '.join(map(repr, unknown))} is not one." if unknown else "."))
        self.tokenizer = build_tokenizer()
        self.n_ctx = settings.n_ctx
        self._ids, self._vocab_size = piece_ids(), len(vocabulary())
        self._test = Batch(pack(self._docs(TEST_SEED), TEST_SEQS, self.n_ctx))

    def _docs(self, seed: int) -> Iterator[list[int]]:
        rng = random.Random(seed)
        families = self.settings.families
        weights = [G.FAMILY_WEIGHTS[f] for f in families]
        while True:
            family = rng.choices(families, weights)[0]
            yield document_ids(rng, family, self._ids, self._vocab_size)

    def batches(self, seed: int, batch: int) -> Iterator[Batch]:
        docs = self._docs(seed)
        while True:
            yield Batch(pack(docs, batch, self.n_ctx))

    def test_batch(self) -> Batch:
        return self._test


def custom_examples(text: str) -> list[str]:
    """The non-empty lines of the typed text, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class CustomTask(Task):
    """The learner's examples: one document per line, a vocabulary built from them."""

    kind = "custom"

    def __init__(self, settings: TaskSettings):
        self.settings = settings
        text = settings.text or ""
        if len(text) > MAX_CUSTOM_CHARS:
            raise TaskError(f"The examples are {len(text):,} characters long; this page trains on at most "
                            f"{MAX_CUSTOM_CHARS:,}. Keep fewer or shorter lines.")
        examples = custom_examples(text)
        if not examples:
            raise TaskError("Type some examples first, one per line (for example a few sentences, or "
                            "strings like 'abcabc').")
        splitter = (pre_tokenizers.Split(Regex("."), behavior="isolated") if settings.level == "char"
                    else pre_tokenizers.Whitespace())
        pieces = [[p for p, _ in splitter.pre_tokenize_str(e)] for e in examples]
        vocab = sorted({p for doc in pieces for p in doc} - set(SPECIALS))
        if len(vocab) > MAX_CUSTOM_VOCAB:
            raise TaskError(f"The examples hold {len(vocab):,} distinct {settings.level}s; a small "
                            f"transformer here learns at most {MAX_CUSTOM_VOCAB:,}. Use character level, "
                            "or fewer different words.")
        if sum(len(doc) for doc in pieces) < 2:
            raise TaskError("The examples hold a single token; give at least two words (or characters) "
                            "so there is a next token to predict.")
        self.tokenizer = word_tokenizer(vocab, settings.level)
        self.n_ctx = settings.n_ctx
        docs = [[0, *self.tokenizer.convert_tokens_to_ids(doc)] for doc in pieces]
        order = list(range(len(docs)))
        random.Random(TEST_SEED).shuffle(order)
        n_test = max(1, len(docs) // 5) if len(docs) >= MIN_HELDOUT_EXAMPLES else 0
        self.test_docs = [docs[i] for i in order[:n_test]]
        self.train_docs = [docs[i] for i in order[n_test:]]
        self.note = "" if n_test else (
            f"With fewer than {MIN_HELDOUT_EXAMPLES} examples nothing is held out: the test loss is "
            "measured on the training examples themselves.")
        self.examples = examples
        held = self.test_docs or self.train_docs
        n_rows = max(1, math.ceil(sum(len(d) for d in held) / self.n_ctx))
        self._test = Batch(pack(itertools.cycle(held), min(n_rows, TEST_SEQS), self.n_ctx))

    def batches(self, seed: int, batch: int) -> Iterator[Batch]:
        rng = random.Random(seed)

        def docs():
            while True:
                yield rng.choice(self.train_docs)

        stream = docs()
        while True:
            yield Batch(pack(stream, batch, self.n_ctx))

    def test_batch(self) -> Batch:
        return self._test


def build_task(settings: TaskSettings) -> Task:
    """The task for these settings; raises TaskError with a message for settings it cannot use."""
    if settings.kind in ("induction", "fixed_offset"):
        return CopyTask(settings)
    if settings.kind == "modular_addition":
        return ModularAddition(settings)
    if settings.kind == "grammar":
        return GrammarTask(settings)
    if settings.kind == "custom":
        return CustomTask(settings)
    raise TaskError(f"Unknown task {settings.kind!r}; pick one of {', '.join(TASKS)}.")
