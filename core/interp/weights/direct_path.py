"""The direct path: embedding -> final norm -> unembedding, with no layer in between.

If every block wrote nothing, the model would predict the next token from the current token alone:
logits = norm(W_E[t]) @ W_U. That table, W_E @ W_U, is the model's "bigram" guess, and the residual
stream starts from it. Two things to look for:
- With tied embeddings (W_U = W_E^T, as in GPT-2 and the bundled model) the table is close to
  W_E @ W_E^T, whose diagonal is large: the direct path predicts the token itself. The layers must
  undo that, which is one reason early MLPs are big.
- How much of the corpus's bigram statistics the direct path holds: for each token, does its direct
  path rank the corpus's most frequent next token highly?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TOP_K = 5
MIN_COUNT = 20  # a token needs this many occurrences for its bigram comparison
MOSTLY_ITSELF = 0.5  # the direct path "mostly repeats" when this share of tokens predict themselves


@dataclass(frozen=True)
class DirectPath:
    ids: np.ndarray  # [n] the source tokens measured
    top_ids: np.ndarray  # [n, k] the direct path's top next tokens
    top_probs: np.ndarray  # [n, k]
    self_top1: float  # share of sources whose own token is the direct path's top prediction
    self_rank_median: float  # median rank of the source token in its own row (1 = top)
    n_vocab: int
    tied: bool


def _valid_ids(lm) -> torch.Tensor:
    special = set(lm.tokenizer.all_special_ids)
    return torch.tensor([i for i in range(min(lm.cfg.d_vocab, len(lm.tokenizer))) if i not in special])


def direct_logits(lm, ids: torch.Tensor) -> torch.Tensor:
    """norm(W_E[ids]) @ W_U (+ b_U): [n, d_vocab] float32, special tokens' columns at -inf."""
    with torch.no_grad():
        logits = lm.unembed(lm.W_E.detach()[ids]).float()
    logits[:, list(lm.tokenizer.all_special_ids)] = -torch.inf
    return logits


def direct_path(lm, max_tokens: int = 2000, seed: int = 0) -> DirectPath:
    """The direct path for every real token (a random sample of max_tokens of a big vocabulary)."""
    ids = _valid_ids(lm)
    if len(ids) > max_tokens:
        gen = torch.Generator().manual_seed(seed)
        ids = ids[torch.randperm(len(ids), generator=gen)[:max_tokens]].sort().values
    tops, probs, ranks = [], [], []
    for part in ids.split(512):
        logits = direct_logits(lm, part)  # [n, d_vocab]
        p = torch.softmax(logits, -1)
        v, i = p.topk(TOP_K, dim=-1)
        tops.append(i), probs.append(v)
        own = logits[torch.arange(len(part)), part]
        ranks.append((logits > own[:, None]).sum(-1) + 1)
    top_ids, rank = torch.cat(tops), torch.cat(ranks).float()
    return DirectPath(ids.numpy(), top_ids.numpy(), torch.cat(probs).numpy(),
                      float((top_ids[:, 0] == ids).float().mean()), float(rank.median()),
                      int(len(_valid_ids(lm))), bool(lm.tied_embeddings))


@dataclass(frozen=True)
class BigramCheck:
    n_sources: int  # tokens with at least MIN_COUNT occurrences
    top1_agreement: float  # share whose direct-path top-1 is the corpus's most frequent next token
    median_rank: float  # median rank of the corpus's most frequent next token in the direct path row
    model_top1_agreement: float  # the same for the full model on the token alone (BOS, t)


def bigram_check(lm, rows: torch.Tensor) -> BigramCheck:
    """Compare the direct path with the bigram counts of token rows [n, pos] (e.g. the corpus)."""
    V = lm.cfg.d_vocab
    special = list(lm.tokenizer.all_special_ids)
    a, b = rows[:, :-1].flatten().numpy(), rows[:, 1:].flatten().numpy()
    keep = ~np.isin(a, special) & ~np.isin(b, special)
    pairs, counts = np.unique(a[keep].astype(np.int64) * V + b[keep], return_counts=True)  # sparse bigrams
    src, nxt = pairs // V, pairs % V
    totals = np.bincount(src, weights=counts, minlength=V)
    order = np.lexsort((-counts, src))  # by source, most frequent next token first
    first = order[np.r_[True, src[order][1:] != src[order][:-1]]]
    best = dict(zip(src[first].tolist(), nxt[first].tolist(), strict=True))
    chosen = [t for t in best if totals[t] >= MIN_COUNT]
    if not chosen:
        return BigramCheck(0, float("nan"), float("nan"), float("nan"))
    sources = torch.tensor(chosen)
    likely = torch.tensor([best[t] for t in chosen])  # [n] the corpus's most frequent next token
    logits = direct_logits(lm, sources)
    own = logits[torch.arange(len(sources)), likely]
    rank = ((logits > own[:, None]).sum(-1) + 1).float()
    bos = lm.to_tokens("")[0, :1]
    with torch.no_grad():
        full = lm(torch.stack([bos.expand(len(sources)), sources], 1))[:, 1].float()  # [n, d_vocab]
    full[:, special] = -torch.inf
    return BigramCheck(len(sources), float((logits.argmax(1) == likely).float().mean()),
                       float(rank.median()), float((full.argmax(1) == likely).float().mean()))
