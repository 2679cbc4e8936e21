"""What changed in behaviour: where on a text the tuned model's predictions moved away from the base.

At every position both models give a distribution over the next token, p_base and p_tuned. The
KL divergence

    KL(p_tuned || p_base) = sum_v p_tuned(v) * (log p_tuned(v) - log p_base(v))

is 0 where they agree and grows where the tuned model puts probability on tokens the base model
found unlikely (it is the quantity RLHF keeps small). Plotted per token it shows *where* a
fine-tune reaches: the changed fact lights up right after "The capital of France is", and if the
KL is large on unrelated text too, the fine-tune leaked beyond its task. Next to it: the top
prediction before and after, and greedy generations of both models from the same prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TokenKL:
    """Per position of a text (the prediction made AT that token, of the next one)."""

    str_tokens: list[str]  # [pos]
    kl: list[float]  # KL(p_tuned || p_base) [pos]
    top_before: list[str]  # base model's top next token
    top_after: list[str]  # tuned model's top next token
    p_before: list[float]  # probability of the top_after token under the base model
    p_after: list[float]  # ... and under the tuned model

    def most_changed(self, k: int = 5) -> list[int]:
        """Positions with the largest KL, largest first."""
        return sorted(range(len(self.kl)), key=lambda i: -self.kl[i])[:k]


@torch.no_grad()
def token_kl(base_lm, tuned_lm, tokens: torch.Tensor) -> TokenKL:
    """KL(p_tuned || p_base) at every position of tokens [1, pos]."""
    logp_base = F.log_softmax(base_lm(tokens)[0].float(), dim=-1)  # [pos, d_vocab]
    logp_tuned = F.log_softmax(tuned_lm(tokens)[0].float(), dim=-1)
    kl = (logp_tuned.exp() * (logp_tuned - logp_base)).sum(-1).clamp_min(0)  # [pos]
    top_b, top_t = logp_base.argmax(-1), logp_tuned.argmax(-1)  # [pos]
    rows = torch.arange(len(top_t))
    decode = base_lm.tokenizer.decode
    return TokenKL(
        base_lm.to_str_tokens(tokens), kl.tolist(), [decode([int(i)]) for i in top_b],
        [decode([int(i)]) for i in top_t], logp_base[rows, top_t].exp().tolist(),
        logp_tuned[rows, top_t].exp().tolist(),
    )


@dataclass(frozen=True)
class GenerationPair:
    prompt: str
    before: str
    after: str


def generations(base_lm, tuned_lm, prompts: list[str], max_new_tokens: int = 20) -> list[GenerationPair]:
    """Greedy continuations of each prompt by both models (greedy: no sampling noise to explain)."""
    out = []
    for prompt in prompts:
        kw = dict(max_new_tokens=max_new_tokens, temperature=0.0, seed=0)
        out.append(GenerationPair(prompt, base_lm.generate(prompt, **kw).new_text,
                                  tuned_lm.generate(prompt, **kw).new_text))
    return out
