"""The training corpus: documents from every family, packed into rows of token ids.

Each document starts with the BOS token and is appended to the current row; when a row reaches the
context length (128) it is cut there, the rest of that document is dropped, and the next row starts
with a fresh document. So every row begins with BOS, as every prompt does at evaluation time, and no
padding is wasted.

Repeated random token ids are the one family written directly as ids: a run of ids drawn uniformly
from the whole vocabulary (specials excluded), then the same run again. Words never used by the
grammar in some form (" Cairo" after "Mary", the bare "the") still occur here, so every token of the
vocabulary is seen in training, and copying works for any token, not only the grammar's words.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import torch

from core.world import grammar as G
from core.world.tokenizer import N_CTX, piece_ids, special_ids, vocabulary

BOS_ID = 0


@dataclass(frozen=True)
class Corpus:
    """rows [n_rows, n_ctx] of token ids, tokens per family, and how often each id occurs."""

    rows: torch.Tensor
    family_tokens: dict
    token_counts: torch.Tensor  # [d_vocab]

    @property
    def unseen_ids(self) -> list[int]:
        """Non-special token ids that never occur in the rows (should be empty)."""
        n_special = len(special_ids())
        return [i for i, c in enumerate(self.token_counts.tolist()) if c == 0 and i >= n_special]


def random_id_run(rng: random.Random, length: int, vocab_size: int,
                  alphabet: int | None = None) -> list[int]:
    """Token ids drawn uniformly from the non-special vocabulary, or from `alphabet` of them."""
    low = len(special_ids())
    if alphabet is None:
        return [rng.randrange(low, vocab_size) for _ in range(length)]
    letters = rng.sample(range(low, vocab_size), alphabet)
    return [rng.choice(letters) for _ in range(length)]


def document_ids(rng: random.Random, family: str, ids: dict[str, int], vocab_size: int,
                 small_alphabet: float = 0.0) -> list[int]:
    """BOS + the token ids of one document of `family`.

    A share `small_alphabet` of the random-id runs uses only 4 to 12 distinct ids, so the same
    pair of tokens occurs in both orders ("A B" and "B A"): copying then needs to know which token
    came BEFORE the current one, not merely which tokens are nearby.
    """
    if family == "random_ids":
        alphabet = rng.randint(4, 12) if rng.random() < small_alphabet else None
        run = random_id_run(rng, rng.randint(5, 40), vocab_size, alphabet)
        return [BOS_ID, *run, *run, *(run if rng.random() < 0.2 else [])]
    words = G.document_words(G.document(rng, family))
    return [BOS_ID, *(ids[p] for p in G.pieces(words))]


def sample_family(rng: random.Random) -> str:
    families, weights = zip(*G.FAMILY_WEIGHTS.items(), strict=True)
    return rng.choices(families, weights)[0]


def build_corpus(n_rows: int, seed: int, n_ctx: int = N_CTX, progress=None,
                 small_alphabet: float = 0.0) -> Corpus:
    """n_rows packed rows, reproducible from the seed. progress: optional callable(n_done)."""
    rng = random.Random(seed)
    ids = piece_ids()
    vocab_size = len(vocabulary())
    rows = torch.empty((n_rows, n_ctx), dtype=torch.long)
    family_tokens: Counter = Counter()
    for r in range(n_rows):
        row: list[int] = []
        while len(row) < n_ctx:
            family = sample_family(rng)
            doc = document_ids(rng, family, ids, vocab_size, small_alphabet)[: n_ctx - len(row)]
            family_tokens[family] += len(doc)
            row.extend(doc)
        rows[r] = torch.tensor(row, dtype=torch.long)
        if progress is not None and (r + 1) % 1000 == 0:
            progress(r + 1)
    counts = torch.bincount(rows.flatten(), minlength=vocab_size)
    return Corpus(rows, dict(family_tokens), counts)


def corpus_documents(n: int, seed: int, families=None) -> list[tuple[str, str]]:
    """(family, text) for n text documents (no random-id family), reproducible from the seed."""
    rng = random.Random(seed)
    families = tuple(families or (f for f in G.FAMILY_WEIGHTS if f != "random_ids"))
    weights = [G.FAMILY_WEIGHTS[f] for f in families]
    out = []
    for _ in range(n):
        family = rng.choices(families, weights)[0]
        out.append((family, G.text(G.document_words(G.document(rng, family)))))
    return out
