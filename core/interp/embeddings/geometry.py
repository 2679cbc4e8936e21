"""Where tokens live: the geometry of the embedding matrix.

The first thing a language model does is look each token up in its embedding matrix W_E
[d_vocab, d_model]: token id t becomes the row W_E[t], a point in a d_model-dimensional space.
Nothing forces related words to be near each other, but training does: tokens that can stand in
the same places in a sentence get similar gradients, so they drift together. On the bundled model
the world's categories are known (names by gender, colours, places, digits, feelings), so we can
measure whether the geometry found them.

- Pictures: d_model dimensions do not fit on a screen, so we project to two. PCA keeps the two
  directions of largest variance (a linear, faithful shadow: distances along them are real, but
  most of the variance may be elsewhere; the explained share says how much). t-SNE (van der Maaten
  and Hinton, 2008) places points so that near neighbours stay near: clusters are real, but
  distances between clusters and cluster sizes mean little.
- A number instead of a picture: a plot can deceive, so next to it we measure how well the
  categories separate in the full space. The silhouette score (Rousseeuw, 1987; cosine distance)
  compares each token's mean distance to its own category with the nearest other category: 1 is
  perfectly separated, 0 is overlapping, negative is mixed up. A linear probe (logistic regression)
  is trained on some tokens and tested on held-out ones (k-fold cross-validation); the same probe
  on shuffled labels is the control: what memorising arbitrary labels can reach in this many
  dimensions (Hewitt and Liang, 2019, "control tasks").
- Neighbours: cosine similarity between rows, in the embedding W_E and in the unembedding W_U
  (whose columns are the directions the last layer writes to predict each token). Many models tie
  them (W_U = W_E^T), in which case the two neighbour lists are the same.
- Analogies: a - b + c, e.g. " Paris" - " France" + " Italy", then the nearest tokens to the sum
  (Mikolov et al., 2013), leaving out a, b and c themselves, as word2vec's evaluation does. Each
  row is scaled to unit length first, so frequent tokens with large norms do not dominate. The
  bundled world defines two relations to check against: capitals (Paris - France + Italy = Rome) and
  pronouns (she - Mary + John = he, where a pronoun is the only cue to a name's gender).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.world import world


# -- choosing tokens -------------------------------------------------------------------------------
def parse_groups(text: str) -> dict[str, list[str]]:
    """Lines "category: word, word, word" -> {category: [words]}; blank lines are skipped.

    Raises ValueError (with the line) for a line without a colon or without words."""
    groups: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if ":" not in line:
            raise ValueError(f"Line {n} has no colon: write it as 'category: word, word, word'.")
        name, words = line.split(":", 1)
        words = [w.strip() for w in words.split(",") if w.strip()]
        if not name.strip() or not words:
            raise ValueError(f"Line {n} needs a category name before the colon and words after it.")
        groups.setdefault(name.strip(), []).extend(words)
    return groups


def word_token_id(tokenizer, word: str) -> int | None:
    """The id of `word` as ONE token, or None: " word" (as inside a sentence) first, then as typed."""
    candidates = [word] if word.startswith(" ") else [" " + word, word]
    for text in candidates:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and ids[0] != tokenizer.unk_token_id:
            return int(ids[0])
    return None


@dataclass(frozen=True)
class TokenSet:
    """Tokens chosen by category: ids[i] is the token tokens[i] (as decoded) in category labels[i]."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    labels: tuple[str, ...]
    dropped: tuple[str, ...]  # words that are not a single known token (or repeat an earlier one)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.labels))


def token_set(tokenizer, groups: Mapping[str, Sequence[str]]) -> TokenSet:
    """Resolve words to single tokens; words split into several tokens, or unknown, are dropped."""
    ids, tokens, labels, dropped, seen = [], [], [], [], set()
    for label, words in groups.items():
        for word in words:
            i = word_token_id(tokenizer, word)
            if i is None or i in seen:
                dropped.append(word.strip())
                continue
            seen.add(i)
            ids.append(i)
            tokens.append(tokenizer.decode([i]))
            labels.append(label)
    return TokenSet(tuple(ids), tuple(tokens), tuple(labels), tuple(dropped))


# -- projections -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Projection:
    coords: np.ndarray  # [n, 2]
    method: str  # "pca" or "tsne"
    explained: tuple[float, float] | None  # PCA: share of the variance on each axis


def project(X: np.ndarray, method: str = "pca", seed: int = 0) -> Projection:
    """Two-dimensional picture of the rows of X [n, d_model] by PCA or t-SNE (seeded)."""
    X = np.asarray(X, dtype=np.float64)
    if len(X) < 3:
        raise ValueError("Need at least 3 tokens to draw a projection.")
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed).fit(X)
        return Projection(pca.transform(X), "pca", tuple(float(r) for r in pca.explained_variance_ratio_))
    if method == "tsne":
        perplexity = float(min(30.0, (len(X) - 1) / 3))
        tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                    random_state=seed, max_iter=500)
        return Projection(tsne.fit_transform(X), "tsne", None)
    raise ValueError(f"method must be 'pca' or 'tsne', not {method!r}")


# -- how well do the categories separate? ------------------------------------------------------------
@dataclass(frozen=True)
class Separation:
    silhouette: float  # cosine silhouette in the full space, [-1, 1]
    probe_accuracy: float  # held-out accuracy of a linear probe (k-fold cross-validation)
    control_accuracy: float  # the same probe on shuffled labels
    chance: float  # share of the largest category: what always guessing it scores
    n_folds: int
    n_tokens: int
    n_categories: int


def separation(X: np.ndarray, labels: Sequence[str], seed: int = 0, n_folds: int = 5) -> Separation:
    """Silhouette and held-out linear-probe accuracy of categories `labels` over rows of X."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    names, counts = np.unique(labels, return_counts=True)
    if len(names) < 2:
        raise ValueError("Need at least two categories to measure how well they separate.")
    n_folds = int(min(n_folds, counts.min()))
    if n_folds < 2:
        small = names[counts.argmin()]
        raise ValueError(f"Category {small!r} has one token; give every category at least two.")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    accuracy = cross_val_score(probe, X, labels, cv=folds).mean()
    shuffled = np.random.default_rng(seed).permutation(labels)
    control = cross_val_score(probe, X, shuffled, cv=folds).mean()
    return Separation(
        silhouette=float(silhouette_score(X, labels, metric="cosine")),
        probe_accuracy=float(accuracy), control_accuracy=float(control),
        chance=float(counts.max() / counts.sum()), n_folds=n_folds, n_tokens=len(X),
        n_categories=len(names),
    )


# -- neighbours and analogies ------------------------------------------------------------------------
@dataclass(frozen=True)
class Neighbours:
    ids: tuple[int, ...]
    similarity: tuple[float, ...]  # cosine similarity to the query, best first


def unit_rows(W: np.ndarray) -> np.ndarray:
    """Rows of W [n, d] scaled to unit length (zero rows stay zero), float32."""
    W = np.asarray(W, dtype=np.float32)
    return W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)


def nearest(W: np.ndarray, query: np.ndarray, k: int = 10, exclude: Sequence[int] = ()) -> Neighbours:
    """The k rows of W [n, d] with the highest cosine similarity to query [d], minus `exclude`."""
    sims = unit_rows(W) @ (query / max(float(np.linalg.norm(query)), 1e-12))  # [n]
    sims = sims.astype(np.float64)
    sims[list(exclude)] = -np.inf
    top = np.argsort(-sims, kind="stable")[:k]
    top = top[np.isfinite(sims[top])]
    return Neighbours(tuple(int(i) for i in top), tuple(float(sims[i]) for i in top))


def neighbours_of(W: np.ndarray, token_id: int, k: int = 10, exclude: Sequence[int] = ()) -> Neighbours:
    """Nearest rows to row token_id of W (itself left out)."""
    W = np.asarray(W)
    return nearest(W, W[token_id], k, exclude=[token_id, *exclude])


def analogy(W: np.ndarray, a: int, b: int, c: int, k: int = 5, exclude: Sequence[int] = ()) -> Neighbours:
    """Top-k tokens nearest to unit(a) - unit(b) + unit(c) (3CosAdd), leaving out a, b and c."""
    U = unit_rows(W)
    return nearest(U, U[a] - U[b] + U[c], k, exclude=[a, b, c, *exclude])


def world_analogy_answer(a: str, b: str, c: str) -> tuple[str, str] | None:
    """The world's answer to a - b + c, with what it is, for two relations the grammar knows:
    capital - country + country (Paris - France + Italy) and pronoun - name + name (she - Mary + John)."""
    capital_of = world.CAPITALS
    if a == capital_of.get(b) and c in capital_of:
        return capital_of[c], f"the capital of {c}"
    gender_b, gender_c = world.GENDER_OF.get(b), world.GENDER_OF.get(c)
    if gender_b and gender_c:
        for form, pronoun in world.PRONOUNS[gender_b].items():
            if a == pronoun:
                return world.PRONOUNS[gender_c][form], f"the pronoun for {c}"
    return None
