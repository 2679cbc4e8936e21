"""Sampling text one token at a time, with the KV cache, under whatever hooks are active.

Each step feeds only the newest token; keys and values of earlier positions come from the cache.
Hooks therefore see activations of shape [batch, 1, ...] after the first step; `hook.pos_offset`
tells them which absolute position that is (so "steer from position p on" works while generating).

Sampling: logits / temperature, keep the top_k largest, softmax, draw with a seeded generator.
temperature == 0 means greedy (always the most likely token).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class Generation:
    prompt_tokens: torch.Tensor  # [1, prompt_pos]
    new_tokens: torch.Tensor  # [n_new]
    new_text: str  # special tokens (an end-of-text that stopped generation) are not shown

    @property
    def tokens(self) -> torch.Tensor:
        return torch.cat([self.prompt_tokens[0], self.new_tokens])


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator) -> torch.Tensor:
    """One token id per row from logits [batch, d_vocab]."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def generate(lm, prompt, *, max_new_tokens: int = 30, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, stop_at_eos: bool = True) -> Generation:
    """Continue `prompt` (text or tokens [1, pos]) by up to max_new_tokens tokens."""
    tokens = lm.to_tokens(prompt) if isinstance(prompt, str) else torch.as_tensor(prompt)
    if tokens.ndim == 1:
        tokens = tokens[None]
    room = lm.cfg.n_ctx - tokens.shape[1]
    max_new_tokens = max(0, min(max_new_tokens, room))
    generator = torch.Generator().manual_seed(seed)
    eos = lm.tokenizer.eos_token_id
    run = lm._dispatch.current()
    saved_offset = run.pos_offset if run is not None else 0
    cache = DynamicCache(config=lm.model.config)
    new: list[int] = []
    step_input, offset = tokens, 0
    try:
        with torch.no_grad():
            for _ in range(max_new_tokens):
                if run is not None:
                    run.pos_offset = offset
                out = lm.model(input_ids=step_input, past_key_values=cache, use_cache=True)
                next_id = sample_next(out.logits[:, -1], temperature, top_k, generator)
                offset += step_input.shape[1]
                new.append(int(next_id[0]))
                if stop_at_eos and eos is not None and new[-1] == eos:
                    break
                step_input = next_id[:, None]
    finally:
        if run is not None:
            run.pos_offset = saved_offset
    new_tokens = torch.tensor(new, dtype=torch.long)
    return Generation(tokens, new_tokens, lm.tokenizer.decode(new, skip_special_tokens=True))
