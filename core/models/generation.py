"""Writing text one token at a time, with the KV cache, under whatever hooks are active.

A language model gives, for the next position, one score (logit) per token of its vocabulary. To
write, pick one token, append it, and ask again. Two things make this fast:
- The KV cache: attention at a new position needs the keys and values of every earlier position,
  and those never change, so each step feeds only the newest token and reuses the cached ones. A
  step then costs one position's work instead of the whole sequence's.
- Batching: several rows (one per coefficient, say) share every step's matrix multiplications.

Hooks see activations of shape [batch, 1, ...] after the first step; `hook.pos_offset` tells them
which absolute position that is, so "steer from position p on" works while generating.

How the next token is picked (SamplingSettings):
- temperature 0: greedy, always the most likely token.
- otherwise: divide the logits by the temperature (below 1 sharpens, above 1 flattens), keep the
  top_k largest if asked, and draw from the softmax. We draw with the exponential race (the Gumbel-max
  trick): token i wins if p_i / E_i is the largest, with E_i ~ Exponential(1) drawn from a generator
  seeded by the row's seed. That picks i with probability exactly p_i, and rows with the same seed
  use the same E at the same step (common random numbers). So two rows that differ only by a
  steering push write the same token wherever the push does not change which token wins: a
  difference between their texts is the push's doing, not luck. A row's text depends only on its
  seed and its own logits, not on which other rows share its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class SamplingSettings:
    """How to continue a prompt: how many tokens, and how each next token is picked."""

    max_new_tokens: int = 30
    temperature: float = 1.0  # 0 = greedy
    top_k: int | None = None  # sample only among the k most likely tokens; None or 0: all
    seed: int = 0
    stop_at_eos: bool = True  # stop a row at the end-of-text token

    def __post_init__(self):
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a number >= 0, not {self.temperature}")
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, not {self.max_new_tokens}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be None or >= 0, not {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Generation:
    prompt_tokens: torch.Tensor  # [1, prompt_pos]
    new_tokens: torch.Tensor  # [n_new]
    new_text: str  # special tokens (an end-of-text that stopped generation) are not shown

    @property
    def tokens(self) -> torch.Tensor:
        return torch.cat([self.prompt_tokens[0], self.new_tokens])


@dataclass(frozen=True)
class BatchGeneration:
    tokens: torch.Tensor  # [batch, prompt_pos + n_new]: prompt, then the new tokens
    n_prompt: int  # prompt positions (every row's prompt has this length)
    lengths: torch.Tensor  # [batch] new tokens per row; after a row's end-of-text, the rest is padding

    @property
    def new_tokens(self) -> torch.Tensor:
        """[batch, n_new] (rows that stopped early are padded with the end-of-text token)."""
        return self.tokens[:, self.n_prompt:]

    def row(self, i: int) -> torch.Tensor:
        """Row i's new tokens, without padding: [lengths[i]]."""
        return self.tokens[i, self.n_prompt: self.n_prompt + int(self.lengths[i])]


def race_noise(n_vocab: int, generator: torch.Generator) -> torch.Tensor:
    """-log(E), E ~ Exponential(1): Gumbel noise [n_vocab]; argmax(logits + noise) ~ softmax(logits)."""
    return -torch.empty(n_vocab).exponential_(generator=generator).log_()


class _Noise:
    """The random numbers of each step: one Gumbel vector per distinct seed, shared by the rows
    with that seed (so a row's text depends only on its seed and its own logits)."""

    def __init__(self, seeds: list[int]):
        distinct = list(dict.fromkeys(seeds))
        self.generators = [torch.Generator().manual_seed(s) for s in distinct]
        self.index = torch.tensor([distinct.index(s) for s in seeds])  # [batch]

    def draw(self, n_vocab: int) -> torch.Tensor:
        """[n_vocab] (one seed) or [batch, n_vocab]."""
        if len(self.generators) == 1:
            return race_noise(n_vocab, self.generators[0])
        return torch.stack([race_noise(n_vocab, g) for g in self.generators])[self.index]


def raced_scores(logits: torch.Tensor, temperature: float, top_k: int | None,
                 noise: _Noise | torch.Generator) -> torch.Tensor:
    """logits [batch, d_vocab] / temperature, top-k masked, plus the race's Gumbel noise: their argmax
    is the sampled token (see the module docstring). A backend whose decoding is greedy (Hugging
    Face's generate inside an nnsight trace) samples the same tokens by taking the argmax of these."""
    scores = logits.float() / temperature  # [batch, d_vocab]
    if top_k and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]  # [batch, 1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    gumbel = (race_noise(scores.shape[-1], noise) if isinstance(noise, torch.Generator)
              else noise.draw(scores.shape[-1]))  # [d_vocab] or [batch, d_vocab]
    return scores + gumbel.to(scores.device)


def pick_next(logits: torch.Tensor, settings: SamplingSettings, noise: _Noise | torch.Generator
              ) -> torch.Tensor:
    """One token id per row from logits [batch, d_vocab] -> [batch] (see the module docstring)."""
    if settings.greedy:
        return logits.argmax(dim=-1)
    return raced_scores(logits, settings.temperature, settings.top_k, noise).argmax(dim=-1)


def batch_to_continue(tokens, settings: SamplingSettings, seeds: list[int] | None, n_ctx: int
                      ) -> tuple[torch.Tensor, list[int], int]:
    """(tokens [batch, pos], one seed per row, new tokens to write) for a generate_batch call: the
    seeds default to settings.seed, and the new tokens stop at the context window."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if tokens.ndim == 1:
        tokens = tokens[None]
    batch, n_prompt = tokens.shape
    seeds = [settings.seed] * batch if seeds is None else [int(s) for s in seeds]
    if len(seeds) != batch:
        raise ValueError(f"{len(seeds)} seeds for {batch} rows")
    return tokens, seeds, max(0, min(settings.max_new_tokens, n_ctx - n_prompt))


def cut_at_eos(ids: torch.Tensor, n_prompt: int, eos: int | None) -> BatchGeneration:
    """For a backend that wrote every row of ids [batch, n_prompt + n_new] to full length: as
    generate_batch does step by step, a row ends at its first end-of-text token, everything after it
    becomes end-of-text padding, and the batch ends when every row has. Rows never influence each
    other, so the cut rows are exactly what stopping would have written."""
    new = ids[:, n_prompt:].clone()  # [batch, n_new]
    batch, n_new = new.shape
    lengths = torch.full((batch,), n_new, dtype=torch.long)
    if eos is not None and n_new:
        hit = new == eos
        first = torch.where(hit.any(-1), hit.float().argmax(-1), torch.full((batch,), n_new))
        lengths = torch.where(hit.any(-1), first + 1, lengths)
        after = torch.arange(n_new)[None] > first[:, None]
        new = new.masked_fill(after, eos)
        new = new[:, :int(lengths.max())]
    return BatchGeneration(torch.cat([ids[:, :n_prompt], new], dim=1), n_prompt, lengths)


def generate_batch(lm, tokens: torch.Tensor, settings: SamplingSettings = SamplingSettings(), *,
                   seeds: list[int] | None = None) -> BatchGeneration:
    """Continue every row of tokens [batch, pos] (no padding: all rows the same length) at once.

    Active hooks (`with lm.hooks(...)`, steering) apply at every step and are told each step's
    position. seeds: one per row (rows with the same seed share their random numbers); default
    settings.seed for all. Generation stops at the context window, or when every row has written
    end-of-text (with settings.stop_at_eos)."""
    tokens, seeds, n_new = batch_to_continue(tokens, settings, seeds, lm.cfg.n_ctx)
    batch, n_prompt = tokens.shape
    out = torch.empty(batch, n_prompt + n_new, dtype=torch.long)  # [batch, pos + n_new]
    out[:, :n_prompt] = tokens
    lengths = torch.full((batch,), n_new, dtype=torch.long)
    eos = lm.tokenizer.eos_token_id if settings.stop_at_eos else None
    done = torch.zeros(batch, dtype=torch.bool)
    noise = _Noise(seeds)
    run = lm._dispatch.current()  # this thread's active hooks, told the position at each step
    saved_offset = run.pos_offset if run is not None else 0
    cache = DynamicCache(config=lm.model.config)
    step_input, offset, written = tokens, 0, 0
    try:
        with torch.inference_mode():
            for t in range(n_new):
                if run is not None:
                    run.pos_offset = offset
                positions = torch.arange(offset, offset + step_input.shape[1])[None]  # [1, step_pos]
                logits = lm.model(input_ids=step_input, past_key_values=cache, use_cache=True,
                                  position_ids=positions, logits_to_keep=1).logits[:, -1]  # [batch, d_vocab]
                next_ids = pick_next(logits, settings, noise)  # [batch]
                offset += step_input.shape[1]
                written = t + 1
                if eos is not None:
                    next_ids = next_ids.masked_fill(done, eos)  # a finished row only pads
                    ended = (next_ids == eos) & ~done
                    lengths[ended] = t + 1
                    done |= ended
                out[:, n_prompt + t] = next_ids
                if eos is not None and bool(done.all()):
                    break
                step_input = next_ids[:, None]  # [batch, 1]
    finally:
        if run is not None:
            run.pos_offset = saved_offset
    lengths = torch.minimum(lengths, torch.tensor(written))
    return BatchGeneration(out[:, : n_prompt + written], n_prompt, lengths)


def generate(lm, prompt, settings: SamplingSettings | None = None, **kwargs) -> Generation:
    """Continue `prompt` (text or tokens [1, pos]); settings, or its fields as keywords
    (max_new_tokens=30, temperature=1.0, top_k=None, seed=0, stop_at_eos=True). Works on either
    backend: the batch is `lm.generate_batch` (HookedLM's is generate_batch above)."""
    if settings is not None and kwargs:
        raise TypeError(f"give settings or its fields, not both ({', '.join(kwargs)})")
    settings = settings or SamplingSettings(**kwargs)
    tokens = lm.to_tokens(prompt) if isinstance(prompt, str) else torch.as_tensor(prompt)
    if tokens.ndim == 1:
        tokens = tokens[None]
    result = lm.generate_batch(tokens[:1], settings)
    new = result.row(0)
    return Generation(tokens[:1], new, lm.tokenizer.decode(new.tolist(), skip_special_tokens=True))
