"""Tiny random models of each architecture family, saved to a folder the way a hub download would be.

Tests load them through load_model(path), the same code path a hub id takes, with no network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoConfig,
    GPTNeoForCausalLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "red", "blue", "Mary", "John", "gave", "to",
         ".", ",", "and", "is", "happy", "sad", "big", "small", "ran", "home", "park"]
SPECIALS = ["<|endoftext|>", "[UNK]", "[PAD]"]
ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")
VOCAB = 64  # the tokenizer uses the first len(SPECIALS + WORDS) ids; the rest are never produced


def save_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="[UNK]", pad_token="[PAD]")
    tok.save_pretrained(folder)
    return tok


def _common(n_layers=2, d_model=32, n_heads=4, n_ctx=32):
    return dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=2, n_ctx=n_ctx,
                n_layers=n_layers, d_model=d_model, n_heads=n_heads)


def build(arch: str, folder: Path, seed: int = 0, **overrides) -> Path:
    """Build a random tiny model of one of ARCHS and save it, with a tokenizer, to folder."""
    torch.manual_seed(seed)
    c = _common()
    ids = dict(vocab_size=c["vocab_size"], bos_token_id=0, eos_token_id=0, pad_token_id=2)
    if arch == "gpt2":
        config = GPT2Config(n_layer=c["n_layers"], n_embd=c["d_model"], n_head=c["n_heads"],
                            n_positions=c["n_ctx"], resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, **ids)
        model = GPT2LMHeadModel(config)
    elif arch == "gpt_neo":
        config = GPTNeoConfig(num_layers=c["n_layers"], hidden_size=c["d_model"], num_heads=c["n_heads"],
                              max_position_embeddings=c["n_ctx"], window_size=4,
                              attention_types=[[["global", "local"], c["n_layers"] // 2]],
                              resid_dropout=0, embed_dropout=0, attention_dropout=0, **ids)
        model = GPTNeoForCausalLM(config)
    elif arch.startswith("gpt_neox"):
        config = GPTNeoXConfig(num_hidden_layers=c["n_layers"], hidden_size=c["d_model"],
                               num_attention_heads=c["n_heads"], intermediate_size=4 * c["d_model"],
                               max_position_embeddings=c["n_ctx"], rotary_pct=0.5,
                               use_parallel_residual=arch == "gpt_neox", **ids)
        model = GPTNeoXForCausalLM(config)
    elif arch == "llama":
        config = LlamaConfig(num_hidden_layers=c["n_layers"], hidden_size=c["d_model"],
                             num_attention_heads=c["n_heads"], num_key_value_heads=2,
                             intermediate_size=3 * c["d_model"], max_position_embeddings=c["n_ctx"],
                             tie_word_embeddings=True, **ids)
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(arch)
    for key, value in overrides.items():
        setattr(model.config, key, value)
    # Random init gives tiny weights; scale up so tests see non-trivial attention and MLP effects.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0 if p.ndim == 2 else 1.0)
    model.save_pretrained(folder)
    save_tokenizer(folder)
    return folder
