"""Text in, tokens out: BOS handling, batching, truncation and unknown words.

Every model here gets a beginning-of-sequence token in front (TransformerLens does the same): many
heads use position 0 as a resting place ("attention sink"), so a prompt without it behaves oddly.
Batches are right-padded: with causal attention a real token never attends to the padding after it,
so activations at real positions are exactly those of the unpadded prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


class EmptyPromptError(ValueError):
    """The prompt is empty or only whitespace."""


@dataclass(frozen=True)
class Prompt:
    """A validated prompt: tokens [1, pos], their strings, and what a page should warn about."""

    text: str
    tokens: torch.Tensor
    str_tokens: list[str]
    n_dropped: int  # tokens cut from the end to fit the context window
    unknown: list[str]  # words the tokenizer does not know (word-level vocabularies only)

    @property
    def truncated(self) -> bool:
        return self.n_dropped > 0


def bos_id(tokenizer) -> int:
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    raise ValueError("This tokenizer has neither a BOS nor an EOS token to start sequences with")


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else bos_id(tokenizer)


def encode(tokenizer, text: str, prepend_bos: bool = True) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [bos_id(tokenizer), *ids] if prepend_bos else list(ids)


def tokenize_batch(tokenizer, texts: Sequence[str], prepend_bos: bool = True,
                   max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [encode(tokenizer, t, prepend_bos)[:max_len] for t in texts]
    lengths = torch.tensor([len(r) for r in rows])
    tokens = torch.full((len(rows), int(lengths.max())), pad_id(tokenizer), dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return tokens, lengths


def to_tokens(tokenizer, text: str | Sequence[str], prepend_bos: bool = True,
              max_len: int | None = None) -> torch.Tensor:
    if isinstance(text, str):
        return torch.tensor([encode(tokenizer, text, prepend_bos)[:max_len]], dtype=torch.long)
    return tokenize_batch(tokenizer, text, prepend_bos, max_len)[0]


def single_token_id(tokenizer, word: str) -> int | None:
    """The id of `word` if it is exactly one known token (" Mary" with its space), else None."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or (tokenizer.unk_token_id is not None and ids[0] == tokenizer.unk_token_id):
        return None
    return int(ids[0])


def to_str_tokens(tokenizer, text_or_tokens) -> list[str]:
    if isinstance(text_or_tokens, str):
        ids = encode(tokenizer, text_or_tokens)
    else:
        ids = torch.as_tensor(text_or_tokens).flatten().tolist()
    return [tokenizer.decode([i]) for i in ids]


def unknown_words(tokenizer, text: str) -> list[str]:
    unk = tokenizer.unk_token_id
    if unk is None or not text:
        return []
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    words = [text[a:b] for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True) if i == unk]
    return list(dict.fromkeys(w.strip() for w in words if w.strip()))


def prepare_prompt(lm, text: str, max_tokens: int | None = None) -> Prompt:
    if text is None or not text.strip():
        raise EmptyPromptError("Type a prompt first: the box is empty.")
    ids = encode(lm.tokenizer, text)
    limit = min(lm.cfg.n_ctx, max_tokens or lm.cfg.n_ctx)
    n_dropped = max(0, len(ids) - limit)
    ids = ids[:limit]
    tokens = torch.tensor([ids], dtype=torch.long)
    return Prompt(text, tokens, to_str_tokens(lm.tokenizer, tokens), n_dropped,
                  unknown_words(lm.tokenizer, text))
