"""What a head moves, read from its weights: the OV and QK circuits (Elhage et al., 2021).

A head does two separate things. Its QK circuit (W_Q, W_K) decides WHERE to look; its OV circuit
(W_V, W_O) decides WHAT gets written once it looks. Multiplying the OV circuit out from token to
logit gives a [d_vocab, d_vocab] table:

    OV[s, t] = E[s] W_V W_O U[:, t]     "if the head attends to source token s, how much does
                                          that raise the logit of token t?"

E is each token as this layer's attention reads it, passed through the layer's own norm (its
learned scale kept, its bias dropped); U is W_U behind the final norm's scale (centred, for
LayerNorm). There are two choices for the token before the norm:
- "in_context": the residual stream entering the layer at token t in the text [BOS, t], so it
  includes what earlier layers add to every token (the "effective embedding"; in small models the
  first MLP in particular rewrites the raw embedding, see McDougall et al., 2023, "Copy
  suppression"). Cheap for small vocabularies, and the default there.
- "direct": the raw row W_E[t], ignoring earlier layers (Elhage et al.'s direct path). Used for big
  vocabularies, where running every token through the model would take too long.
Special tokens are left out on both sides. Other heads in the same position, and the norms' exact
per-token scale, are ignored, so this is the head in isolation. The two choices can disagree even
in sign: a head in a later layer reads what earlier layers made of a token, not its raw embedding,
and a small model may move token identity into quite different directions on the way.

A copying head maps each token to itself: OV[s, s] is large. Two measures of that:
- Eigenvalue copying score (Elhage et al., 2021): sum(lambda) / sum(|lambda|) over the eigenvalues
  of OV, in [-1, 1]. Positive eigenvalues mean directions that are written back with the same sign,
  so +1 is a pure copier and -1 a head that suppresses what it reads. OV = A B with A = E W_V
  [d_vocab, d_head] and B = W_O U [d_head, d_vocab], and A B has the same non-zero eigenvalues as
  B A [d_head, d_head], so a 50,000-token table costs a d_head x d_head eigenproblem.
- Diagonal rank (as in ARENA's induction-head exercises, after Olsson et al., 2022): where the
  source token itself ranks in its own OV row, among every token: 1 is a perfect copier, and a head
  that ignores identity puts it in the middle (rank ~ d_vocab / 2).
Induction heads must copy (they find the token after an earlier copy and predict it), so they
should score high on both.

The QK circuit's positional preference is measured rather than read: on random tokens the content
averages out, and the mean pre-softmax score by distance (query minus key, each row centred) shows
which offsets a head prefers. A previous-token head peaks at distance 1. This works the same for
learned and rotary positions. The first token is left out because attention sinks give it a score
that has nothing to do with distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.models import act_name
from core.models.norms import normalization_of

FULL_TABLE_MAX_VOCAB = 5000  # above this, the explicit [d_vocab, d_vocab] table is not built
CONTEXT_MAX_VOCAB = 5000  # up to this, "in_context" is the default way to read tokens
MODES = ("in_context", "direct")


def _norm_eps(module) -> float:
    for attr in ("eps", "variance_epsilon", "epsilon"):
        if hasattr(module, attr):
            return float(getattr(module, attr))
    return 1e-5


def _normalize(x: torch.Tensor, normalization: str, eps: float) -> torch.Tensor:
    """The norm without its learned parameters, row by row: [n, d_model] -> [n, d_model]."""
    if normalization == "none":  # a switched-off block norm (core.models.norms)
        return x
    if normalization == "rmsnorm":
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    centred = x - x.mean(-1, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + eps)


def _dtype(lm) -> torch.dtype:
    # float64 where it is cheap (exact comparisons in tests), float32 for big vocabularies
    return torch.float64 if lm.cfg.d_vocab * lm.cfg.d_model**2 < 2e9 else torch.float32


def auto_mode(lm) -> str:
    return "in_context" if lm.cfg.d_vocab <= CONTEXT_MAX_VOCAB else "direct"


def vocab_ids(lm) -> torch.Tensor:
    """Every token id the tokenizer can produce, special tokens left out: [n_vocab]."""
    special = set(lm.tokenizer.all_special_ids)
    return torch.tensor([i for i in range(min(lm.cfg.d_vocab, len(lm.tokenizer))) if i not in special])


def token_rows(lm, ids: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Per layer, each token as the residual stream entering it (before ln1): [n, d_model] each."""
    if mode == "direct":
        rows = lm.W_E.detach()[ids]
        return [rows] * lm.cfg.n_layers  # the same object for every layer
    if mode != "in_context":
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    bos = lm.to_tokens("")[0, :1]
    names = [act_name("resid_pre", layer) for layer in range(lm.cfg.n_layers)]
    chunks = [[] for _ in names]
    for part in ids.split(1024):
        tokens = torch.stack([bos.expand(len(part)), part], dim=1)  # [n, 2]: BOS, t
        _, cache = lm.run_with_cache(tokens, names=names)
        for layer, name in enumerate(names):
            chunks[layer].append(cache[name][:, 1])  # [n, d_model]
    return [torch.cat(c) for c in chunks]


def effective_embed(lm, layer: int, ids: torch.Tensor, mode: str, dtype=torch.float64) -> torch.Tensor:
    """E: the tokens `ids` as layer's attention reads them (ln1 scale kept, bias dropped): [n, d_model]."""
    return _effective(lm, layer, token_rows(lm, ids, mode)[layer], dtype)


def _effective(lm, layer: int, rows: torch.Tensor, dtype) -> torch.Tensor:
    ln1 = lm.adapter.block_modules(layer).ln1
    gamma = ln1.weight.detach().to(dtype)  # [d_model]
    return _normalize(rows.to(dtype), normalization_of(ln1, lm.cfg.normalization), _norm_eps(ln1)) * gamma


def effective_unembed(lm, ids: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """U: the columns `ids` of W_U behind the final norm's scale (centred for LayerNorm): [d_model, n]."""
    gamma = lm.adapter.ln_final().weight.detach().to(dtype)  # [d_model]
    U = gamma[:, None] * lm.W_U.detach()[:, ids].to(dtype)  # [d_model, n]
    if lm.cfg.normalization != "rmsnorm":
        U = U - U.mean(dim=0, keepdim=True)  # LayerNorm removes the mean over d_model first
    return U


def _head_weights(lm, layer: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    w = lm.attention_weights(layer)  # W_V [head, d_model, d_head], W_O [head, d_head, d_model]
    return w.W_V.detach().to(dtype), w.W_O.detach().to(dtype)


def eigen_copying_score(M: torch.Tensor) -> float:
    """sum(lambda) / sum(|lambda|) of a square matrix's eigenvalues (Elhage et al., 2021)."""
    lam = torch.linalg.eigvals(M.to(torch.float64))
    total = lam.abs().sum()
    return float(lam.real.sum() / total) if total > 0 else 0.0


def copying_scores(lm, mode: str | None = None) -> np.ndarray:
    """Eigenvalue copying score of every head, [layer, head], from the d_head x d_head matrices
    B A = W_O (U E) W_V, one einsum per layer (U E is [d_model, d_model])."""
    mode, dtype, ids = mode or auto_mode(lm), _dtype(lm), vocab_ids(lm)
    U = effective_unembed(lm, ids, dtype)  # [d_model, n]
    out = np.zeros((lm.cfg.n_layers, lm.cfg.n_heads))
    K, last = None, None
    for layer, rows in enumerate(token_rows(lm, ids, mode)):
        ln1 = lm.adapter.block_modules(layer).ln1
        if K is None or rows is not last[0] or _norm_eps(ln1) != last[1]:  # "direct": reuse U N
            last = (rows, _norm_eps(ln1))
            kind = normalization_of(ln1, lm.cfg.normalization)
            K = U @ _normalize(rows.to(dtype), kind, last[1])  # [d_model, d_model]
        gamma = ln1.weight.detach().to(dtype)  # [d_model]: U E = (U N) diag(gamma)
        W_V, W_O = _head_weights(lm, layer, dtype)
        BA = torch.einsum("hom,mn,n,hnv->hov", W_O, K, gamma, W_V)  # [head, d_head, d_head]
        out[layer] = [eigen_copying_score(m) for m in BA]
    return out


def ov_table(lm, layer: int, head: int, mode: str | None = None) -> torch.Tensor:
    """The full OV circuit [n_vocab, n_vocab] = E W_V W_O U, by explicit matrix products."""
    ids = vocab_ids(lm)
    if len(ids) > FULL_TABLE_MAX_VOCAB:
        raise ValueError(f"a {len(ids)} x {len(ids)} table is too big; use copying_scores")
    W_V, W_O = _head_weights(lm, layer, torch.float64)
    E = effective_embed(lm, layer, ids, mode or auto_mode(lm))
    return E @ W_V[head] @ W_O[head] @ effective_unembed(lm, ids)


def copying_score_full(lm, layer: int, head: int, mode: str | None = None) -> float:
    """The eigenvalue copying score from the full table (small vocabularies only)."""
    return eigen_copying_score(ov_table(lm, layer, head, mode))


@dataclass(frozen=True)
class OVTop:
    src_ids: tuple[int, ...]
    top_ids: np.ndarray  # [n_src, k]: the tokens each source token pushes up most
    top_values: np.ndarray  # [n_src, k]
    self_rank: np.ndarray  # [n_src]: where the source token itself ranks in its own row (1 = top)
    n_vocab: int  # how many tokens each row ranks
    mode: str


def ov_top_tokens(lm, layer: int, head: int, src_ids, k: int = 5, mode: str | None = None) -> OVTop:
    """Top-k output tokens per source token, and each source token's rank in its own row.

    Source tokens must be non-special (ids from vocab_ids)."""
    mode, dtype, ids = mode or auto_mode(lm), _dtype(lm), vocab_ids(lm)
    src = torch.as_tensor(list(src_ids), dtype=torch.long)
    column = {int(t): j for j, t in enumerate(ids)}
    W_V, W_O = _head_weights(lm, layer, dtype)
    E = effective_embed(lm, layer, src, mode, dtype)  # [n_src, d_model]
    rows = (E @ W_V[head] @ W_O[head]) @ effective_unembed(lm, ids, dtype)  # [n_src, n_vocab]
    values, top = rows.topk(min(k, rows.shape[1]), dim=-1)
    own = rows[torch.arange(len(src)), [column[int(s)] for s in src]]  # [n_src]
    rank = (rows > own[:, None]).sum(-1) + 1  # [n_src]
    return OVTop(tuple(int(s) for s in src), ids[top].numpy(), values.float().numpy(), rank.numpy(),
                 len(ids), mode)


@dataclass(frozen=True)
class DiagonalCopying:
    top5: float  # share of source tokens ranked in the top 5 of their own row
    median_rank: float
    n_tokens: int  # source tokens measured
    n_vocab: int  # tokens each row ranks: a head blind to identity has median rank ~ n_vocab / 2


def diagonal_copying(lm, layer: int, head: int, src_ids=None, mode: str | None = None,
                     chunk: int = 512) -> DiagonalCopying:
    """Where each source token ranks in its own OV row (default: every non-special token)."""
    src = vocab_ids(lm).tolist() if src_ids is None else list(src_ids)
    ranks = np.concatenate([ov_top_tokens(lm, layer, head, src[i: i + chunk], 1, mode).self_rank
                            for i in range(0, len(src), chunk)])
    return DiagonalCopying(float((ranks <= 5).mean()), float(np.median(ranks)), len(src),
                           int(len(vocab_ids(lm))))


def diagonal_copying_all(lm, mode: str | None = None) -> dict[str, np.ndarray]:
    """The diagonal measure of every head over every non-special token, each layer's E computed once:
    {"top5": [layer, head], "median_rank": [layer, head]} (small vocabularies)."""
    mode, dtype, ids = mode or auto_mode(lm), _dtype(lm), vocab_ids(lm)
    U = effective_unembed(lm, ids, dtype)  # [d_model, n]
    top5 = np.zeros((lm.cfg.n_layers, lm.cfg.n_heads))
    median = np.zeros_like(top5)
    for layer, rows in enumerate(token_rows(lm, ids, mode)):
        E = _effective(lm, layer, rows, dtype)  # [n, d_model]
        W_V, W_O = _head_weights(lm, layer, dtype)
        for head in range(lm.cfg.n_heads):
            M = (E @ W_V[head] @ W_O[head]) @ U  # [n, n]: row s is source token s
            rank = ((M > M.diagonal()[:, None]).sum(-1) + 1).numpy()  # [n]
            top5[layer, head], median[layer, head] = (rank <= 5).mean(), np.median(rank)
    return {"top5": top5, "median_rank": median}


def sample_vocab(lm, max_tokens: int, seed: int = 0) -> list[int]:
    """A seeded sample of non-special tokens (all of them if there are few)."""
    ids = vocab_ids(lm).tolist()
    if len(ids) <= max_tokens:
        return ids
    pick = np.random.default_rng(seed).choice(len(ids), max_tokens, replace=False)
    return [ids[i] for i in sorted(pick)]


# -- QK: which offsets does a head prefer? -------------------------------------------------------------
def distance_profile(scores: torch.Tensor) -> np.ndarray:
    """Mean row-centred score by distance q - k: scores [batch, head, q, k] -> [head, pos].

    Only q >= 1, k >= 1 and visible keys (k <= q, not masked) count; entries with no data are NaN."""
    scores = scores.double()
    n = scores.shape[-1]
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    valid = (k <= q) & (k >= 1) & (q >= 1)  # [q, k]
    valid = valid & torch.isfinite(scores) & (scores > -1e4)  # [batch, head, q, k]
    filled = torch.where(valid, scores, 0.0)
    count = valid.sum(-1, keepdim=True)
    row_mean = filled.sum(-1, keepdim=True) / count.clamp(min=1)
    centred = torch.where(valid, scores - row_mean, 0.0)
    dist = (q - k).clamp(min=0).reshape(-1)  # [q * k]
    heads = scores.shape[1]
    total = torch.zeros(heads, n, dtype=torch.float64).index_add_(
        1, dist, centred.sum(0).reshape(heads, -1))
    counts = torch.zeros(heads, n, dtype=torch.float64).index_add_(
        1, dist, valid.sum(0).reshape(heads, -1).double())
    return torch.where(counts > 0, total / counts.clamp(min=1), float("nan")).numpy()


def random_tokens(lm, n: int, length: int, seed: int = 0) -> torch.Tensor:
    """[n, length]: BOS then length - 1 uniformly random non-special tokens (seeded)."""
    allowed = vocab_ids(lm)
    gen = torch.Generator().manual_seed(seed)
    body = allowed[torch.randint(len(allowed), (n, length - 1), generator=gen)]
    bos = lm.to_tokens("")[:, :1].expand(n, 1)
    return torch.cat([bos, body], dim=1)


def qk_distance_profile(lm, layer: int, n: int = 8, length: int = 64, seed: int = 0) -> np.ndarray:
    """distance_profile of layer's pre-softmax scores on random tokens: [head, length]."""
    length = min(length, lm.cfg.n_ctx)
    name = act_name("attn_scores", layer)
    _, cache = lm.run_with_cache(random_tokens(lm, n, length, seed), names=[name])
    return distance_profile(cache[name])
