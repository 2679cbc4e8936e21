"""Composition between heads (Elhage et al., 2021): how much a later head reads what an earlier one
writes, computed from the weights alone.

An earlier head h1 writes x @ W_OV1 into the stream (W_OV = W_V @ W_O, [d_model, d_model]). A later
head h2 can read that write in three places:

    Q-composition: in its queries   score ||W_OV1 @ W_QK2||_F   / (||W_OV1||_F ||W_QK2||_F)
    K-composition: in its keys      score ||W_OV1 @ W_QK2^T||_F / (||W_OV1||_F ||W_QK2||_F)
    V-composition: in its values    score ||W_OV1 @ W_OV2||_F   / (||W_OV1||_F ||W_OV2||_F)

with W_QK = W_Q @ W_K^T. Each score is between 0 and 1: how much of h1's output space lands where
h2 looks. An induction head is the textbook case of K-composition: a previous-token head writes
"the token before me was A" at every position, and the induction head's keys read exactly that,
so it can find "the token after the earlier A".

What is "large"? Random matrices of the same shapes already score well above 0 (two random
subspaces overlap a little), so the scores are compared with a baseline: the same computation on
the same weights with their entries shuffled (each matrix of each head permuted at random), which
keeps every norm and destroys every alignment. A pair stands out when its score is at least
STANDOUT_Z standard deviations above the baseline's mean.

How it is computed fast: ||A B||_F^2 = <A^T A, B B^T>, and every Gram matrix has a cheap factored
form (A^T A = W_O^T (W_V^T W_V) W_O, ...). So each head's two d_model x d_model Gram matrices are
built once and every pair of heads costs one inner product, instead of a d_model x d_head x d_head
product per pair. A test computes every score the slow, obvious way, from the Hugging Face modules'
raw weights of each family, and checks they agree.
Raw weights are used: the layer norms' scales are not folded into W_Q, W_K, W_V.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MODES = ("Q", "K", "V")
STANDOUT_Z = 4.0


@dataclass(frozen=True)
class HeadWeights:
    """Per layer: W_Q, W_K, W_V [head, d_model, d_head], W_O [head, d_head, d_model]."""

    W_Q: list[torch.Tensor]
    W_K: list[torch.Tensor]
    W_V: list[torch.Tensor]
    W_O: list[torch.Tensor]

    @property
    def n_layers(self) -> int:
        return len(self.W_Q)

    @property
    def n_heads(self) -> int:
        return self.W_Q[0].shape[0]


def head_weights(lm, dtype=torch.float32) -> HeadWeights:
    ws = [lm.attention_weights(L) for L in range(lm.cfg.n_layers)]
    get = lambda name: [getattr(w, name).detach().to(dtype) for w in ws]  # noqa: E731
    return HeadWeights(get("W_Q"), get("W_K"), get("W_V"), get("W_O"))


def shuffled(w: HeadWeights, seed: int = 0) -> HeadWeights:
    """Every matrix of every head with its entries permuted at random: the same norms, no structure."""
    gen = torch.Generator().manual_seed(seed)

    def shuffle(stack: torch.Tensor) -> torch.Tensor:
        flat = stack.reshape(stack.shape[0], -1)
        idx = torch.argsort(torch.rand(flat.shape, generator=gen), dim=1)
        return flat.gather(1, idx).reshape(stack.shape)
    return HeadWeights(*[[shuffle(t) for t in getattr(w, n)] for n in ("W_Q", "W_K", "W_V", "W_O")])


@dataclass(frozen=True)
class Composition:
    """scores[mode] [layer1, head1, layer2, head2]: h1 in an earlier layer -> h2 in a later one;
    NaN where layer2 <= layer1."""

    scores: dict

    def pair(self, mode: str, h1: tuple[int, int], h2: tuple[int, int]) -> float:
        return float(self.scores[mode][h1[0], h1[1], h2[0], h2[1]])

    def values(self, mode: str) -> np.ndarray:
        """Every defined score of one mode, flat."""
        s = self.scores[mode]
        return s[~np.isnan(s)]


BLOCK = 192  # Gram matrices are built and compared in blocks of this many dimensions


def _factor(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """F with F^T F = outer (inner^T inner) outer^T, for outer [H, d, r], inner [H, n, r]: with
    inner^T inner = U diag(lam) U^T (a small r x r eigenproblem), F = diag(sqrt(lam)) U^T outer^T,
    [H, r, d]. Exact also when inner is rank-deficient."""
    gram = inner.double().transpose(1, 2) @ inner.double()  # [H, r, r]
    lam, U = torch.linalg.eigh(gram)
    R = (lam.clamp_min(0).sqrt()[..., None] * U.transpose(1, 2)).to(outer.dtype)  # [H, r, r]
    return R @ outer.transpose(1, 2)


def _packed_size(splits: list[int]) -> int:
    return sum(a * b for i, a in enumerate(splits) for b in splits[i:])


def _packed_gram(F: torch.Tensor, splits: list[int], out: torch.Tensor | None = None) -> torch.Tensor:
    """The upper block triangle of F^T F [H, d, d] as one vector per head, off-diagonal blocks scaled
    by sqrt(2), so that packed(A) . packed(B) = <A, B> for symmetric A, B: [H, n_packed] (written
    into `out` if given)."""
    parts = torch.split(F, splits, dim=2)  # [H, r, block] each
    if out is None:
        out = torch.empty(F.shape[0], _packed_size(splits), dtype=F.dtype)
    at = 0
    for i, Fi in enumerate(parts):
        for j in range(i, len(parts)):
            n = splits[i] * splits[j]
            view = out[:, at: at + n].view(F.shape[0], splits[i], splits[j])
            torch.matmul(Fi.transpose(1, 2), parts[j], out=view)  # [H, block_i, block_j]
            if i != j:
                view.mul_(2.0 ** 0.5)
            at += n
    return out


def composition_scores(w: HeadWeights, dtype: torch.dtype | None = None) -> Composition:
    """Q-, K- and V-composition of every earlier head with every later head (see the module
    docstring). dtype: the matmul format (default: the weights'; bfloat16 is several times faster on
    CPUs with AMX, at about three significant digits)."""
    L, H = w.n_layers, w.n_heads
    d = w.W_Q[0].shape[1]
    dtype = dtype or w.W_Q[0].dtype
    splits = [len(c) for c in torch.arange(d).split(BLOCK)]
    out = {m: np.full((L, H, L, H), np.nan) for m in MODES}
    if L < 2:
        return Composition(out)
    n_packed = _packed_size(splits)
    lefts = torch.empty((L - 1) * H, n_packed, dtype=dtype)  # every earlier head's packed Gram
    right = torch.empty(3 * H, n_packed, dtype=dtype)
    left_norm = torch.empty((L - 1) * H)
    for l1 in range(L - 1):
        # W_OV^T W_OV = W_O^T (W_V^T W_V) W_O
        F = _factor(w.W_O[l1].transpose(1, 2), w.W_V[l1]).to(dtype)  # [H, d_head, d]
        left_norm[l1 * H: (l1 + 1) * H] = F.float().pow(2).sum((1, 2)).sqrt()
        _packed_gram(F, splits, lefts[l1 * H: (l1 + 1) * H])
    for l2 in range(1, L):
        Q, K, V, O = w.W_Q[l2], w.W_K[l2], w.W_V[l2], w.W_O[l2]
        factors = {"Q": _factor(Q, K),  # W_QK W_QK^T = W_Q (W_K^T W_K) W_Q^T
                   "K": _factor(K, Q),  # W_QK^T W_QK = W_K (W_Q^T W_Q) W_K^T
                   "V": _factor(V, O.transpose(1, 2))}  # W_OV W_OV^T = W_V (W_O W_O^T) W_V^T
        norms = torch.cat([f.float().pow(2).sum((1, 2)).sqrt() for f in factors.values()])  # [3H]
        for m, f in enumerate(factors.values()):
            _packed_gram(f.to(dtype), splits, right[m * H: (m + 1) * H])  # [3H, n_packed]
        sq = (lefts[: l2 * H] @ right.T).float().clamp_min(0)  # [l2 * H, 3H]: ||W_OV1 B2||_F^2
        denom = left_norm[: l2 * H, None] * norms[None, :]
        score = (sq.sqrt() / denom.clamp_min(1e-30)).double().numpy().reshape(l2, H, 3, H)
        for m, mode in enumerate(MODES):
            out[mode][:l2, :, l2, :] = score[:, :, m, :]
    return Composition(out)


@dataclass(frozen=True)
class Baseline:
    mean: dict  # mode -> float
    std: dict

    def z(self, mode: str, score: float) -> float:
        return (score - self.mean[mode]) / self.std[mode] if self.std[mode] > 0 else float("nan")


def baseline(w: HeadWeights, seeds: tuple[int, ...] = (0, 1)) -> Baseline:
    """Mean and spread of every mode's scores over shuffled copies of the weights."""
    vals = {m: [] for m in MODES}
    for seed in seeds:
        comp = composition_scores(shuffled(w, seed))
        for m in MODES:
            vals[m].append(comp.values(m))
    return Baseline({m: float(np.concatenate(v).mean()) for m, v in vals.items()},
                    {m: float(np.concatenate(v).std()) for m, v in vals.items()})


@dataclass(frozen=True)
class Standout:
    mode: str
    h1: tuple[int, int]
    h2: tuple[int, int]
    score: float
    z: float


def standouts(comp: Composition, base: Baseline, z: float = STANDOUT_Z, limit: int = 10) -> list[Standout]:
    """Pairs scoring at least z baseline standard deviations above the baseline mean, strongest first."""
    out = []
    for mode in MODES:
        s = comp.scores[mode]
        for idx in zip(*np.nonzero(~np.isnan(s)), strict=True):
            score = float(s[idx])
            zz = base.z(mode, score)
            if zz >= z:
                out.append(Standout(mode, (int(idx[0]), int(idx[1])), (int(idx[2]), int(idx[3])), score, zz))
    out.sort(key=lambda x: -x.z)
    return out[:limit]


@dataclass(frozen=True)
class PairCheck:
    """Named pairs (e.g. previous-token head -> induction heads) in one mode, next to the baseline,
    to the same pairs' other modes, and to the same sources' scores into the other heads."""

    mode: str
    pairs: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    scores: tuple[float, ...]
    z: tuple[float, ...]
    other_modes: tuple[dict, ...]  # per pair: {mode: score} for the other two modes
    elsewhere: float  # mean score (same mode) from the sources into later heads that are not targets
    verdict: str  # "stands_out", "partly", "does_not_stand_out", "no_pairs"


def check_pairs(comp: Composition, base: Baseline, sources, targets, mode: str = "K") -> PairCheck:
    """Do the pairs source -> target (earlier -> later layer) stand out in `mode`? They do when each
    scores at least STANDOUT_Z baseline standard deviations above the shuffled baseline and above
    the same pair's two other modes."""
    sources = [tuple(int(x) for x in s[:2]) for s in sources]
    targets = [tuple(int(x) for x in t[:2]) for t in targets]
    pairs = tuple((s, t) for s in sources for t in targets if s[0] < t[0])
    if not pairs:
        return PairCheck(mode, (), (), (), (), float("nan"), "no_pairs")
    scores = tuple(comp.pair(mode, s, t) for s, t in pairs)
    z = tuple(base.z(mode, x) for x in scores)
    others = tuple({m: comp.pair(m, s, t) for m in MODES if m != mode} for s, t in pairs)
    L, H = comp.scores[mode].shape[:2]
    rest = [comp.pair(mode, s, (l2, h)) for s in sources for l2 in range(s[0] + 1, L) for h in range(H)
            if (l2, h) not in targets]
    good = [zz >= STANDOUT_Z and all(x > o for o in other.values())
            for zz, x, other in zip(z, scores, others, strict=True)]
    verdict = "stands_out" if all(good) else "partly" if any(good) else "does_not_stand_out"
    return PairCheck(mode, pairs, scores, z, others, float(np.mean(rest)) if rest else float("nan"), verdict)
