"""The bundled tokenizer: one token per word, GPT-2 style spaces, built with `tokenizers`.

Real tokenizers (BPE) cut rare words into pieces; ours never does, because the world's vocabulary
is closed: every word of the grammar is a single token. That makes every position in a sentence a
whole word, which keeps attention maps and probes easy to read.

How text becomes tokens (the same steps GPT-2 uses, with a word-level vocabulary instead of BPE):
1. Pre-tokenize with GPT-2's byte-level rule: split into words that carry their leading space
   (" Mary"), runs of digits, and runs of punctuation ("," or "."); spaces become "Ġ" internally.
2. Look each piece up in the vocabulary (a WordLevel model). A piece that is not there becomes
   <unk>: the model has never seen it, and pages warn about it.
3. Decoding turns "Ġ" back into a space, so decode(ids) reproduces the text exactly, and decoding a
   single word token gives " Mary" (with its space), just as in GPT-2.

Every word exists twice: " Mary" (inside a sentence) and "Mary" (first word of a text). Special
tokens: <|endoftext|> (id 0) starts every sequence (BOS) and also ends one (EOS); <unk> (id 1);
<pad> (id 2). Digits are one token each, so "3 + 4 = 7" is five tokens.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from core.world import world as W
from core.world.grammar import all_words

BOS, UNK, PAD = "<|endoftext|>", "<unk>", "<pad>"
SPECIALS = (BOS, UNK, PAD)
N_CTX = 128


def vocabulary() -> list[str]:
    """Token strings in id order: specials, then every word bare and with a leading space."""
    tokens = list(SPECIALS)
    for word in sorted(all_words()):
        tokens.append(word)
        if word not in W.NO_SPACE_BEFORE:
            tokens.append(" " + word)
    return tokens


def _byte_level(piece: str) -> str:
    """The internal spelling of a piece (" Mary" -> "ĠMary"); it must stay one pre-token."""
    parts = pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(piece)
    if len(parts) != 1:
        raise ValueError(f"{piece!r} would not be a single token: {parts}")
    return parts[0][0]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The word-level tokenizer of the world's vocabulary (built directly: no training data)."""
    vocab = {}
    for i, piece in enumerate(vocabulary()):
        key = piece if piece in SPECIALS else _byte_level(piece)
        if key in vocab:
            raise ValueError(f"duplicate token {piece!r}")
        vocab[key] = i
    raw = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    raw.decoder = decoders.ByteLevel()
    raw.post_processor = processors.ByteLevel(trim_offsets=True)
    raw.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=BOS, eos_token=BOS, unk_token=UNK, pad_token=PAD,
        clean_up_tokenization_spaces=False, model_max_length=N_CTX,
    )


def save_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def piece_ids(tokenizer=None) -> dict[str, int]:
    """Token string (" Mary", "Mary", ",") -> id, without running the tokenizer."""
    return {piece: i for i, piece in enumerate(vocabulary())}


def special_ids() -> tuple[int, ...]:
    return tuple(range(len(SPECIALS)))
