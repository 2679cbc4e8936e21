"""Documents packed into rows of tokens, the way language models are trained.

Every document becomes BOS + its tokens; documents are laid end to end and cut into rows of seq_len
tokens, so no position is wasted on padding and the loss is the plain next-token loss over every
position. A document that does not fit the rest of a row is cut there, and the next row starts with
a fresh document (as core.world.corpus does for the bundled model's own training).
"""

from __future__ import annotations

import torch


def pack_rows(lm, texts: list[str] | tuple[str, ...], seq_len: int) -> torch.Tensor:
    """Documents (each BOS + text) packed end to end into rows [n_rows, seq_len]."""
    rows, row = [], []
    for text in texts:
        ids = lm.to_tokens(text)[0].tolist()
        row += ids[: seq_len - len(row)]
        if len(row) == seq_len:
            rows.append(row)
            row = []
    if not rows:
        raise ValueError(f"Not enough text to fill one row of {seq_len} tokens")
    return torch.tensor(rows, dtype=torch.long)


def cycle_texts(texts, n_words: int, seed: int) -> list[str]:
    """Texts repeated in shuffled rounds until they hold about n_words words (and more)."""
    if not texts:
        raise ValueError("No texts to train on")
    gen = torch.Generator().manual_seed(seed)
    out, words = [], 0
    while words < n_words:
        for i in torch.randperm(len(texts), generator=gen).tolist():
            out.append(texts[i])
            words += len(texts[i].split()) + 2
    return out
