"""Reading an SAE's features: what each one fires on, and which known features it found.

A feature is a direction (a row of W_dec) plus the rule for when it is active (a column of W_enc).
To find out what it means, we run the SAE over held-out activations and look:
- density: the fraction of tokens on which it fires. Very dense features (> 10%) rarely mean one
  thing; dead ones (never fire) mean nothing.
- top-activating contexts: the tokens where it fires hardest, with the text around them.
- the histogram of its non-zero activations.
- logit effects: W_dec[i] @ W_U, the tokens whose logits this direction raises or lowers if it were
  read straight off by the unembedding (it ignores the layers in between, so it is a hint).

Ground truth. The bundled world was written by us, so we know which tokens are colours, places,
female names... For each such attribute, label every token 1 (in the group) or 0, and score each
feature by AUROC: the probability that a random in-group token makes the feature fire harder than
a random other token (ties count half). 1.0 is a perfect detector, 0.5 is chance. The attribute is
"found" when its best feature reaches FOUND_AUROC (sae.verdict, the one place that says so).
Precision (of the tokens the feature fires on, the share in the group) and recall (of the group's
tokens, the share it fires on), read at the activation threshold with the best F1, say what kind of
miss it is: a feature for only "red" has high precision and low recall for "colours"; a feature
that fires weakly on everything has the opposite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from core.interp.sae.data import ActivationSet
from core.interp.sae.model import SAE
from core.interp.sae.verdict import is_found

PAPERS = (
    "Bricken et al. (2023), [*Towards Monosemanticity: Decomposing Language Models With Dictionary "
    "Learning*](https://transformer-circuits.pub/2023/monosemantic-features/index.html): ReLU + L1 "
    "SAEs, resampling dead features, feature dashboards.",
    "Cunningham et al. (2023), [*Sparse Autoencoders Find Highly Interpretable Features in Language "
    "Models*](https://arxiv.org/abs/2309.08600).",
    "Conerly et al. (2024), [*Circuits Updates, April 2024: training SAEs*]"
    "(https://transformer-circuits.pub/2024/april-update/index.html): the L1 penalty weighted by "
    "decoder norms, short initial decoder rows, activations scaled to norm sqrt(d_in).",
    "Gao et al. (2024), [*Scaling and evaluating sparse autoencoders*](https://arxiv.org/abs/2406.04093): "
    "TopK SAEs.",
    "[SAELens](https://github.com/decoderesearch/SAELens) (training; the parameter names and the "
    "cfg.json + sae_weights.safetensors files used here), "
    "[sae_vis](https://github.com/callummcdougall/sae_vis) and [Neuronpedia](https://www.neuronpedia.org) "
    "(feature dashboards).",
)
MAX_ACTIVE = 25_000_000  # non-zero feature activations kept for the dashboards (200 MB as CSC)
BYTES_PER_ACTIVE = 16  # float32 value + int32 index, twice at the peak (the CSR blocks and their CSC copy)
CHUNK_FLOATS = 4_000_000  # encode at most this many [rows x d_sae] numbers at once (16 MB)


class TooDenseError(ValueError):
    """An SAE fires on so many features per token that its activations would not fit in memory."""


@dataclass(frozen=True)
class FeatureActs:
    """feature_acts of n tokens as a sparse [n, d_sae] matrix (column j = feature j)."""

    matrix: sparse.csc_matrix
    token_ids: np.ndarray  # [n]

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    def column(self, feature: int) -> np.ndarray:
        """Dense activations [n] of one feature."""
        return self.matrix[:, feature].toarray().ravel()


def chunk_rows(d_sae: int) -> int:
    """Rows encoded at once, so that a dense [rows, d_sae] block stays under CHUNK_FLOATS numbers."""
    return max(1, CHUNK_FLOATS // max(d_sae, 1))


@torch.no_grad()
def feature_acts(sae: SAE, acts: torch.Tensor, token_ids: torch.Tensor, *, chunk: int | None = None,
                 max_active: int = MAX_ACTIVE) -> FeatureActs:
    """Encode acts [n, d_in] in chunks and keep only the non-zero activations.

    Raises TooDenseError as soon as more than max_active activations are non-zero (an SAE that
    fires on most of its features would otherwise fill the memory with a "sparse" matrix)."""
    counter = ActiveCounter(sae.cfg.d_sae, len(acts), max_active)
    blocks = []
    step = chunk or chunk_rows(sae.cfg.d_sae)
    for start in range(0, len(acts), step):
        f = sae.encode(acts[start:start + step].float())  # [chunk, d_sae]
        counter.add(f)
        blocks.append(sparse.csr_matrix(f.numpy()))
    return stack(blocks, token_ids, sae.cfg.d_sae)


def stack(blocks: list, token_ids: torch.Tensor, d_sae: int) -> FeatureActs:
    """FeatureActs from CSR blocks of consecutive rows."""
    matrix = sparse.vstack(blocks).tocsc() if blocks else sparse.csc_matrix((0, d_sae))
    return FeatureActs(matrix, token_ids.numpy())


class ActiveCounter:
    """Counts non-zero activations chunk by chunk; TooDenseError past max_active."""

    def __init__(self, d_sae: int, n: int, max_active: int = MAX_ACTIVE):
        self.d_sae, self.n, self.max_active, self.kept, self.rows = d_sae, n, max_active, 0, 0

    def add(self, f: torch.Tensor) -> None:  # f [chunk, d_sae]
        self.kept += int(torch.count_nonzero(f))
        self.rows += len(f)
        if self.kept > self.max_active:
            raise TooDenseError(
                f"This SAE is active on about {self.kept / self.rows:,.0f} of its {self.d_sae:,} features "
                f"per token: too dense to analyse here (at most {self.max_active:,} non-zero "
                f"activations over the {self.n:,} held-out tokens).")


@dataclass(frozen=True)
class FeatureStats:
    density: np.ndarray  # [d_sae] fraction of tokens where it fires
    max_act: np.ndarray  # [d_sae]
    mean_act: np.ndarray  # [d_sae] mean activation where it fires
    top_token: np.ndarray  # [d_sae] token id with the largest summed activation (-1 if dead)


def feature_stats(F: FeatureActs, d_vocab: int) -> FeatureStats:
    M = F.matrix
    count = np.diff(M.indptr)  # [d_sae]
    total = np.asarray(M.sum(axis=0)).ravel()
    max_act = np.asarray(M.max(axis=0).toarray()).ravel() if M.nnz else np.zeros(M.shape[1])
    onehot = sparse.csr_matrix((np.ones(F.n), (np.arange(F.n), F.token_ids)), shape=(F.n, d_vocab))
    per_token = (M.T.tocsr() @ onehot).tocsr()  # [d_sae, d_vocab] summed activation per token
    top = np.asarray(per_token.argmax(axis=1)).ravel()
    top[count == 0] = -1
    return FeatureStats(count / max(F.n, 1), max_act, total / np.maximum(count, 1), top)


# -- ground truth --------------------------------------------------------------------------------
def attribute_token_ids(lm, groups: dict[str, tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Attribute -> ids of the single tokens that spell its words: " red", "red" and "Red"."""
    out = {}
    for attribute, words in groups.items():
        ids = set()
        for word in words:
            bare = word.strip()
            for form in {word, bare, bare[:1].upper() + bare[1:]}:
                token_id = lm.single_token_id(form)  # None: several tokens, or unknown
                if token_id is not None:
                    ids.add(token_id)
        out[attribute] = np.array(sorted(ids), dtype=np.int64)
    return out


@dataclass(frozen=True)
class GroundTruthMatch:
    attribute: str
    n_tokens: int  # tokens of the attribute in the evaluation set
    feature: int  # best feature (-1 when the attribute never occurs)
    auroc: float
    precision: float
    recall: float
    found: bool


def auroc(values: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of scores `values` for boolean `labels`; ties count half."""
    pos, neg = values[labels], values[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    neg = np.sort(neg)
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def ground_truth_matches(F: FeatureActs, attributes: dict[str, np.ndarray], *,
                         n_candidates: int = 12) -> list[GroundTruthMatch]:
    """For each attribute, the feature with the highest AUROC at telling its tokens apart; found
    when it reaches FOUND_AUROC (sae.verdict).

    Exact AUROC for every feature would sort n x d_sae numbers, so candidates are picked first by
    a cheap score (the AUROC of "fires or not", and the mean activation gap), then scored exactly.
    """
    M = F.matrix
    fired = (M > 0).astype(np.float32).tocsc()
    count = np.diff(fired.indptr)
    out = []
    for attribute, ids in attributes.items():
        labels = np.isin(F.token_ids, ids)
        n_pos, n_neg = int(labels.sum()), int((~labels).sum())
        if n_pos == 0 or n_neg == 0:
            out.append(GroundTruthMatch(attribute, n_pos, -1, float("nan"), 0.0, 0.0, False))
            continue
        y = labels.astype(np.float32)
        fire_pos = fired.T @ y  # [d_sae]
        binary = 0.5 * (1 + fire_pos / n_pos - (count - fire_pos) / n_neg)
        gap = (M.T @ y) / n_pos - (M.T @ (1 - y)) / n_neg
        candidates = np.unique(np.concatenate([np.argsort(-binary)[:n_candidates],
                                               np.argsort(-gap)[:n_candidates]]))
        scores = [auroc(F.column(j), labels) for j in candidates]
        best = int(candidates[int(np.argmax(scores))])
        score = float(max(scores))
        precision, recall = best_f1(F.column(best), labels)
        out.append(GroundTruthMatch(attribute, n_pos, best, score, precision, recall, is_found(score)))
    return out


def best_f1(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(precision, recall) of "value > t" as a detector of labels, at the t with the best F1
    (t runs over the positive values; (0, 0) if the feature never fires)."""
    order = np.argsort(-values, kind="stable")
    v, y = values[order], labels[order]
    n_fire = int((v > 0).sum())
    if n_fire == 0 or not y.any():
        return 0.0, 0.0
    tp = np.cumsum(y[:n_fire])  # true positives when the top i + 1 tokens count as firing
    last = np.r_[v[1:n_fire] != v[:n_fire - 1], True]  # cut only between distinct values
    precision = tp / np.arange(1, n_fire + 1)
    recall = tp / y.sum()
    f1 = np.where(last, 2 * precision * recall / np.maximum(precision + recall, 1e-12), -1)
    i = int(np.argmax(f1))
    return float(precision[i]), float(recall[i])


def best_attribute(F: FeatureActs, attributes: dict[str, np.ndarray], min_f1: float = 0.1
                   ) -> tuple[list[str], np.ndarray]:
    """Per feature: the attribute it detects best and the F1 of "fires" as a detector of it (a
    strict match score for sorting the feature list: dense features score low). ("", F1) when
    the best F1 is under min_f1."""
    fired = (F.matrix > 0).astype(np.float32).tocsc()
    count = np.diff(fired.indptr)  # [d_sae]
    names = list(attributes)
    d_sae = F.matrix.shape[1]
    if not names:
        return [""] * d_sae, np.zeros(d_sae)
    Y = np.stack([np.isin(F.token_ids, attributes[a]) for a in names], axis=1).astype(np.float32)
    tp = np.asarray(fired.T @ Y)  # [d_sae, attr]: tokens of the attribute it fires on
    f1 = 2 * tp / np.maximum(count[:, None] + Y.sum(0)[None, :], 1)
    best = f1.argmax(axis=1)
    score = f1[np.arange(d_sae), best]
    return [names[b] if score[i] >= min_f1 else "" for i, b in enumerate(best)], score


# -- one feature ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """A window of text around one activation; acts[i] is the feature's value on tokens[i]."""

    tokens: tuple[str, ...]
    acts: tuple[float, ...]
    center: int  # index in the window of the token that made the list
    value: float


def top_contexts(F: FeatureActs, feature: int, data: ActivationSet, vocab: Sequence[str], *,
                 k: int = 8, before: int = 10, after: int = 3) -> list[Context]:
    """The k tokens where `feature` fires hardest, each with its neighbours in the document.

    F must come from data's rows (same order); vocab[i] is token i as text. Rows of one document
    are consecutive, in position order, starting at position 1 (see sae_data).
    """
    col = F.column(feature)
    order = np.argsort(-col, kind="stable")[:k]
    out = []
    for row in order:
        if col[row] <= 0:
            break
        d, p = int(data.doc[row]), int(data.pos[row])
        first_row = row - (p - 1)  # the row of position 1 in this document
        lo, hi = max(1, p - before), min(int(data.lengths[d]) - 1, p + after)
        ids = data.tokens[d, lo:hi + 1].tolist()
        acts = tuple(float(col[first_row + q - 1]) for q in range(lo, hi + 1))
        out.append(Context(tuple(vocab[i] for i in ids), acts, p - lo, float(col[row])))
    return out


def logit_effects(sae: SAE, W_U: torch.Tensor, feature: int, k: int = 10, exclude=()
                  ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(top, bottom) k (token id, value) of W_dec[feature] @ W_U [d_vocab], leaving out the token
    ids in exclude (say padding and unknown, which the model never predicts)."""
    with torch.no_grad():
        effect = sae.W_dec[feature].float() @ W_U.float()  # [d_vocab]
    keep = torch.ones(len(effect), dtype=torch.bool)
    keep[list(exclude)] = False
    ids = keep.nonzero().flatten()  # [kept]
    order = torch.argsort(effect[ids], descending=True)
    k = min(k, len(ids))
    top, bottom = ids[order[:k]], ids[order.flip(0)[:k]]
    return ([(int(i), float(effect[i])) for i in top], [(int(i), float(effect[i])) for i in bottom])


def features_for_token(F: FeatureActs, token_id: int, k: int = 10) -> list[tuple[int, float, float]]:
    """(feature, mean activation, fraction of occurrences it fires on) for the k features that
    respond most to one token; empty if the token never occurs."""
    rows = np.flatnonzero(F.token_ids == token_id)
    if len(rows) == 0:
        return []
    sub = F.matrix.tocsr()[rows]  # [occurrences, d_sae]
    mean = np.asarray(sub.mean(axis=0)).ravel()
    rate = np.asarray((sub > 0).mean(axis=0)).ravel()
    best = np.argsort(-mean)[:k]
    return [(int(j), float(mean[j]), float(rate[j])) for j in best if mean[j] > 0]


def max_cosine(W_dec: torch.Tensor, true_features: torch.Tensor) -> torch.Tensor:
    """For each true feature [n_true, d_in], the best cosine with any learned row of W_dec."""
    a = W_dec / W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)
    b = true_features / true_features.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return (b @ a.T).max(dim=1).values  # [n_true]
