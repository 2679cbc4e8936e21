"""Neurons page: top-activating contexts for every neuron of one layer of the bundled model over
50,800 tokens (goal: under 5 s, then cached), and composition scores for every pair of heads of a
GPT-2-small-shaped model (goal: under 2 s), on one torch thread.

- Top contexts: the deepest layer (3: the forward pass runs every block), 400 corpus rows of 128
  tokens: the forward pass stopped after the layer, then per neuron its 16 highest and lowest
  activations with their windows, a 40-bin histogram, its mean and share positive.
- Composition: Q-, K- and V-composition of every earlier head with every later head (12 layers x 12
  heads, d_model 768, d_head 64: 9,504 pairs x 3 modes), float32, random weights (the timing does
  not depend on them). Peer: TransformerLens's all_composition_scores (one mode per call, all three)
  on a twin of the bundled model's shape, interleaved with ours; at the GPT-2 shape it needs more
  memory than this machine can spare (see the note in the table).
- Explain/score: scoring one typed rule on fresh sentences once their activations are cached.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks import Result, interleaved, median_of, transformer_lens_twin
from core.interp.neurons import activations as A
from core.interp.neurons import labels as Lb
from core.interp.neurons import scoring as S
from core.interp.weights import composition as C
from core.models import load_model
from core.world.corpus import build_corpus

GPT2_SMALL = dict(L=12, H=12, d=768, dh=64)


def _gpt2_shape_heads(seed: int = 0) -> C.HeadWeights:
    L, H, d, dh = GPT2_SMALL.values()
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.02  # noqa: E731
    return C.HeadWeights([r(H, d, dh) for _ in range(L)], [r(H, d, dh) for _ in range(L)],
                         [r(H, d, dh) for _ in range(L)], [r(H, dh, d) for _ in range(L)])


def _tl_composition(lm):
    """TransformerLens's all_composition_scores, Q, K and V, on a twin of the bundled model's shape.
    (At the GPT-2-small shape it broadcasts every pair of heads at full d_model x d_model and went
    past 9.6 GB of memory here before it was stopped, so it is compared at the small shape only.)"""
    model = transformer_lens_twin(lm.model.config)
    if model is None:
        return None

    def scores():
        with torch.no_grad():
            return [model.all_composition_scores(m) for m in ("Q", "K", "V")]
    return scores


def run() -> list[Result]:
    torch.set_num_threads(1)
    lm = load_model()
    rows = build_corpus(400, 7).rows
    out = []
    med, spread = median_of(lambda: A.neuron_records(lm, 3, rows), repeat=5, warmup=1)
    out.append(Result("top contexts + histograms, all 512 neurons of layer 3, 50,800 tokens", med, "s",
                      goal="< 5 s (then cached)", repeats=5, threads=1,
                      note=f"min-max {spread[0]:.2f}-{spread[1]:.2f} s"))

    w = _gpt2_shape_heads()
    med, spread = median_of(lambda: C.composition_scores(w))
    out.append(Result("composition scores, all head pairs, GPT-2 small shape (Q, K, V)", med, "s",
                      goal="< 2 s", repeats=5, threads=1, note=f"min-max {spread[0]:.2f}-{spread[1]:.2f} s; "
                      "TransformerLens's all_composition_scores exceeded 9.6 GB at this shape"))
    small = C.head_weights(lm)
    peer = _tl_composition(lm)
    if peer is not None:
        cmp = interleaved(lambda: C.composition_scores(small), peer, repeats=5)
        out.append(cmp.result("composition scores, bundled shape (4L x 4H, d128)",
                              "TransformerLens all_composition_scores x3", unit="ms", scale=1e3))
    med, _ = median_of(lambda: C.baseline(C.head_weights(lm)))
    out.append(Result("shuffled-weight baseline, bundled model (2 shuffles)", med * 1e3, "ms", repeats=5,
                      threads=1))

    data = Lb.labelled_tokens(lm, 400, seed=12)
    acts = Lb.neuron_activations(lm, data, 3).numpy()
    med, _ = median_of(lambda: S.score_rule("colour or place", data, acts[:, 5]))
    out.append(Result(f"score one rule on fresh sentences ({data.n_tokens:,} tokens, cached activations)",
                      med * 1e3, "ms", repeats=5, threads=1))
    med, _ = median_of(lambda: S.label_aurocs(data, acts.astype(np.float32)), repeat=3)
    out.append(Result("AUROC of every label for every neuron of a layer (the layer table)", med, "s",
                      repeats=3, threads=1))
    return out
