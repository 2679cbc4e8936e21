"""Cached computations behind the MLP neurons & weights page.

Neuron summaries (top contexts, histograms) are computed for every neuron of a layer in one pass and
cached per model, layer and text. Labelled activations for explain/score are big matrices
([tokens, d_mlp]), so they are kept once per server (shared, never changed) rather than pickled per
call, within LABEL_ACTS_BYTES.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from core.interp.neurons import ablation as K
from core.interp.neurons import activations as A
from core.interp.neurons import gated as G
from core.interp.neurons import labels as Lb
from core.interp.neurons import scoring as S
from core.interp.neurons import weights as Wt
from core.interp.weights import composition as C
from core.interp.weights import direct_path as DP
from core.interp.weights import svd as SVD
from core.models import HookedLM
from core.world import datasets as world_data
from core.world.corpus import build_corpus
from ui.common.budget import check_session_fits
from ui.common.cache import cache_on_model, resource_on_model, resource_within_bytes

CORPUS_ROWS, CORPUS_SEED = 400, 7  # 400 rows x 128 tokens: 50,800 tokens after the first of each row
WORLD_DOCS = 600  # a hub model reads the bundled world's stories as text
SUGGEST_SEED, SCORE_SEED = 11, 12  # labelled text: rules are suggested on one, scored on the other
LABEL_DOCS = 400
GATE_ROWS = 100
MAX_TEXT_TOKENS = 30_000


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def corpus_rows(lm, source: str, text: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, lengths) the neuron summaries are computed on. source: "corpus" or "text"."""
    if source == "text":
        if not text.strip():
            raise ValueError("Paste some text first: the box is empty.")
        enc = lm.tokenizer(text, add_special_tokens=False)["input_ids"][:MAX_TEXT_TOKENS]
        width = min(lm.cfg.n_ctx, 256) - 1
        bos = int(lm.to_tokens("")[0, 0])
        chunks = [[bos, *enc[i: i + width]] for i in range(0, len(enc), width)]
        chunks = [c for c in chunks if len(c) > 1]
        if not chunks:
            raise ValueError("The text is too short: paste at least a sentence.")
        lengths = torch.tensor([len(c) for c in chunks])
        rows = torch.full((len(chunks), int(lengths.max())), bos, dtype=torch.long)
        for i, c in enumerate(chunks):
            rows[i, : len(c)] = torch.tensor(c)
        return rows, lengths
    if lm.is_bundled:
        rows = build_corpus(CORPUS_ROWS, CORPUS_SEED).rows
        return rows, torch.full((len(rows),), rows.shape[1])
    return lm.tokenize_batch(world_data.corpus_texts(WORLD_DOCS, seed=CORPUS_SEED))


def source_words(lm, source: str, n_tokens: int) -> str:
    if source == "text":
        return f"your text ({n_tokens:,} tokens)"
    if lm.is_bundled:
        return f"the bundled corpus ({n_tokens:,} tokens)"
    return f"the bundled world's stories as text ({n_tokens:,} tokens)"


@cache_on_model(max_entries=8, show_spinner="Running the model over the text and ranking every neuron...")
def records(lm: HookedLM, layer: int, source: str, key: str, text: str = "") -> A.NeuronRecords:
    rows, lengths = corpus_rows(lm, source, text)
    need = int(lengths.sum()) * lm.cfg.d_mlp * 2 * 1.3
    check_session_fits(f"neurons:{layer}", need, what=f"the activations of {int(lengths.sum()):,} tokens",
                       lower="a shorter text")
    return A.neuron_records(lm, layer, rows, lengths)


@resource_on_model(max_entries=3, show_spinner=False)
def labelled(lm: HookedLM, seed: int) -> Lb.LabelledTokens:
    """Labelled text for the model (shared; never modified)."""
    return Lb.labelled_tokens(lm, LABEL_DOCS, seed)


# Labelled activations held for the whole server: two texts (suggest and score) of one GPT-2-small layer
# are 2 x 105 MB, of one bundled layer 2 x 17 MB; by count (it was six entries) a visitor browsing three
# GPT-2 layers kept 630 MB resident.
LABEL_ACTS_BYTES = 256 * 2**20


@resource_within_bytes(LABEL_ACTS_BYTES, spinner="Reading every neuron of the layer on fresh sentences...")
def label_acts(lm: HookedLM, layer: int, seed: int) -> np.ndarray:
    """[n_tokens, d_mlp] float16 activations on the labelled text of `seed` (shared; never modified)."""
    return Lb.neuron_activations(lm, labelled(lm, seed), layer).to(torch.float16).numpy()


def data_and_acts(lm, layer: int, seed: int) -> tuple[Lb.LabelledTokens, np.ndarray]:
    return labelled(lm, seed), label_acts(lm, layer, seed)


@cache_on_model(max_entries=16, show_spinner=False)
def layer_labels(lm: HookedLM, layer: int) -> tuple[tuple[str, ...], np.ndarray]:
    """(labels, AUROC [label, neuron]) of every label for every neuron on the suggestion text."""
    data, acts = data_and_acts(lm, layer, SUGGEST_SEED)
    return S.label_aurocs(data, acts.astype(np.float32))


@cache_on_model(max_entries=64, show_spinner=False)
def suggestions(lm: HookedLM, layer: int, neuron: int) -> list[S.Suggestion]:
    data, acts = data_and_acts(lm, layer, SUGGEST_SEED)
    return S.suggest_rules(data, acts[:, neuron].astype(np.float32), k=4)


@cache_on_model(max_entries=64, show_spinner=False)
def candidates(lm: HookedLM, layer: int, neuron: int) -> tuple[str, ...]:
    data, acts = data_and_acts(lm, layer, SUGGEST_SEED)
    return S.candidate_rules(data, acts[:, neuron].astype(np.float32), seed=layer * 100_003 + neuron)


@cache_on_model(max_entries=128, show_spinner=False)
def score(lm: HookedLM, layer: int, neuron: int, rule: str) -> S.RuleScore:
    """Score a rule on fresh sentences (raises RuleError for a rule that cannot be read)."""
    data, acts = data_and_acts(lm, layer, SCORE_SEED)
    return S.score_rule(rule, data, acts[:, neuron].astype(np.float32))


def scored_activations(lm, layer: int, neuron: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(activations, where the rule holds) on the scoring text, for the overlap chart."""
    from core.interp.neurons.rules import evaluate, parse_rule

    data, acts = data_and_acts(lm, layer, SCORE_SEED)
    return acts[:, neuron].astype(np.float32), evaluate(parse_rule(rule), data)


@cache_on_model(max_entries=32, show_spinner=False)
def candidate_scores(lm: HookedLM, layer: int, neuron: int, rules: tuple[str, ...]) -> dict:
    return {r: score(lm, layer, neuron, r) for r in rules}


@cache_on_model(max_entries=4, show_spinner=False)
def family_texts(lm: HookedLM) -> list[K.FamilyText]:
    return K.family_texts(lm)


@cache_on_model(max_entries=64, show_spinner="Measuring the loss with and without the neuron...")
def knock_out(lm: HookedLM, layer: int, neuron: int, mode: str, mean: float) -> K.KnockOut:
    return K.knock_out(lm, layer, neuron, family_texts(lm), mode=mode, mean=mean)


@cache_on_model(max_entries=64, show_spinner=False)
def reads_writes(lm: HookedLM, layer: int, neuron: int) -> dict:
    out = {"writes": Wt.writes(lm, layer, neuron), "reads": Wt.reads(lm, layer, neuron)}
    if Wt.mlp_weights(lm, layer).gated:
        out["reads (gate)"] = Wt.reads(lm, layer, neuron, which="gate")
    return out


@cache_on_model(max_entries=32, show_spinner=False)
def gate_up(lm: HookedLM, layer: int, neuron: int, source: str, key: str, text: str = "") -> G.GateUp:
    rows, lengths = corpus_rows(lm, source, text)
    return G.gate_up(lm, layer, neuron, rows[:GATE_ROWS], lengths[:GATE_ROWS])


# -- weights --------------------------------------------------------------------------------------
@cache_on_model(max_entries=4, show_spinner="Composition scores of every pair of heads...")
def composition(lm: HookedLM) -> tuple[C.Composition, C.Baseline]:
    w = C.head_weights(lm)
    return C.composition_scores(w), C.baseline(w)


@cache_on_model(max_entries=64, show_spinner=False)
def head_svd(lm: HookedLM, layer: int, head: int, kind: str) -> SVD.CircuitSVD:
    return SVD.head_svd(lm, layer, head, kind)


@cache_on_model(max_entries=4, show_spinner="Reading the direct path...")
def direct(lm: HookedLM) -> tuple[DP.DirectPath, DP.BigramCheck]:
    rows, _ = corpus_rows(lm, "corpus")
    return DP.direct_path(lm), DP.bigram_check(lm, rows)
