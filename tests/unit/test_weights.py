"""Weights: composition scores equal the definition computed naively, the bundled previous-token head
K-composes with its induction heads, factored SVD equals the full one, and the direct path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from core.bundled.report import load_report, report_heads
from core.interp.weights import composition as C
from core.interp.weights import direct_path as DP
from core.interp.weights import svd as SVD
from core.models import load_model
from core.models.loading import BUNDLED_DIR


@pytest.fixture(scope="module")
def bundled():
    return load_model()


def random_heads(L=3, H=2, d=400, dh=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return C.HeadWeights([r(H, d, dh) for _ in range(L)], [r(H, d, dh) for _ in range(L)],
                         [r(H, d, dh) for _ in range(L)], [r(H, dh, d) for _ in range(L)])


def all_pairs(w):
    heads = [(layer, h) for layer in range(w.n_layers) for h in range(w.n_heads)]
    return [(a, b) for a, b in itertools.product(heads, heads) if a[0] < b[0]]


# -- the oracle: per head W_Q, W_K, W_V [d_model, d_head], W_O [d_head, d_model] read straight from the
# Hugging Face modules of each family, in float64, sharing no code with core ----------------------------
def _heads(W: torch.Tensor, n: int) -> list[torch.Tensor]:
    """Split W [d_model, n * d_head] (x @ W layout) into n blocks of columns [d_model, d_head]."""
    return list(W.double().split(W.shape[1] // n, dim=1))


def hf_head_matrices(model, layer: int) -> dict[str, list[torch.Tensor]]:
    cfg = model.config
    kind = cfg.model_type
    if kind == "gpt2":  # Conv1D: y = x @ W; c_attn's columns are [q | k | v], each head-major
        attn = model.transformer.h[layer].attn
        n, d = cfg.n_head, cfg.n_embd
        W = attn.c_attn.weight.detach()  # [d_model, 3 d_model]
        Q, K, V = _heads(W[:, :d], n), _heads(W[:, d:2 * d], n), _heads(W[:, 2 * d:], n)
        O = [o.T for o in _heads(attn.c_proj.weight.detach().T, n)]  # rows of c_proj per head
    elif kind == "gpt_neo":  # Linear: y = x @ W^T
        attn = model.transformer.h[layer].attn.attention
        n = cfg.num_heads
        Q, K, V = (_heads(getattr(attn, f"{m}_proj").weight.detach().T, n) for m in "qkv")
        O = [o.T for o in _heads(attn.out_proj.weight.detach(), n)]
    elif kind == "gpt_neox":  # query_key_value's rows: per head [q | k | v] (a view [head, 3 d_head])
        attn = model.gpt_neox.layers[layer].attention
        n = cfg.num_attention_heads
        per_head = attn.query_key_value.weight.detach().double().view(n, 3, -1, cfg.hidden_size)
        Q, K, V = ([per_head[h, i].T for h in range(n)] for i in range(3))
        O = [o.T for o in _heads(attn.dense.weight.detach(), n)]
    elif kind == "llama":  # grouped keys and values: head h reads key/value head h // (n / n_kv)
        attn = model.model.layers[layer].self_attn
        n, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        Q = _heads(attn.q_proj.weight.detach().T, n)
        K_kv, V_kv = _heads(attn.k_proj.weight.detach().T, n_kv), _heads(attn.v_proj.weight.detach().T, n_kv)
        K, V = [K_kv[h // (n // n_kv)] for h in range(n)], [V_kv[h // (n // n_kv)] for h in range(n)]
        O = [o.T for o in _heads(attn.o_proj.weight.detach(), n)]
    else:
        raise ValueError(kind)
    return {"W_Q": list(Q), "W_K": list(K), "W_V": list(V), "W_O": list(O)}


def naive_composition(heads: list[dict], mode: str, h1: tuple[int, int], h2: tuple[int, int]) -> float:
    """One score by its definition, with explicit d_model x d_model matrices (float64)."""
    (l1, i), (l2, j) = h1, h2
    OV1 = heads[l1]["W_V"][i] @ heads[l1]["W_O"][i]
    if mode == "V":
        B = heads[l2]["W_V"][j] @ heads[l2]["W_O"][j]
    else:
        QK = heads[l2]["W_Q"][j] @ heads[l2]["W_K"][j].T
        B = QK if mode == "Q" else QK.T
    return float(torch.linalg.norm(OV1 @ B) / (torch.linalg.norm(OV1) * torch.linalg.norm(B)))


def _as_dicts(w: C.HeadWeights) -> list[dict]:
    return [{n: [m.double() for m in getattr(w, n)[L]] for n in ("W_Q", "W_K", "W_V", "W_O")}
            for L in range(w.n_layers)]


@pytest.mark.parametrize("source", ["bundled", "random d=400 (several blocks)"])
def test_composition_scores_equal_the_naive_computation(bundled, source):
    if source == "bundled":
        w = C.head_weights(bundled)
        heads = [hf_head_matrices(bundled.model, L) for L in range(bundled.cfg.n_layers)]
    else:
        w = random_heads()
        heads = _as_dicts(w)
    comp = C.composition_scores(w)
    for mode in C.MODES:
        for h1, h2 in all_pairs(w):
            assert comp.pair(mode, h1, h2) == pytest.approx(naive_composition(heads, mode, h1, h2), rel=1e-4)
        s = comp.scores[mode]
        assert np.isnan(s[1, :, 0, :]).all() and np.isnan(s[1, :, 1, :]).all()  # only earlier -> later


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neo", "gpt_neox", "llama"])
def test_composition_on_hub_families_equals_the_raw_module_weights(tiny_model_dir, arch):
    lm = load_model(str(tiny_model_dir(arch)))
    heads = [hf_head_matrices(lm.model, L) for L in range(lm.cfg.n_layers)]
    w = C.head_weights(lm)
    for name in ("W_Q", "W_K", "W_V", "W_O"):  # the adapter reads each head's matrices the right way round
        for L in range(lm.cfg.n_layers):
            torch.testing.assert_close(getattr(w, name)[L].double(), torch.stack(heads[L][name]))
    comp = C.composition_scores(w)
    for mode in C.MODES:
        for h1, h2 in all_pairs(w):
            assert comp.pair(mode, h1, h2) == pytest.approx(naive_composition(heads, mode, h1, h2), rel=1e-4)


def test_shuffling_keeps_norms_and_breaks_alignment():
    w = random_heads(seed=1)
    s = C.shuffled(w, seed=0)
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        for a, b in zip(getattr(w, name), getattr(s, name), strict=True):
            torch.testing.assert_close(a.flatten(1).sort(1).values, b.flatten(1).sort(1).values)
            assert not torch.equal(a, b)


def test_previous_token_to_induction_k_composition_stands_out_on_the_bundled_model(bundled):
    listed = report_heads(load_report(BUNDLED_DIR))
    w = C.head_weights(bundled)
    comp, base = C.composition_scores(w), C.baseline(w)
    check = C.check_pairs(comp, base, listed["previous_token"], listed["induction"], "K")
    assert check.verdict == "stands_out", check
    assert all(z >= C.STANDOUT_Z for z in check.z)
    # K, not Q or V: the induction heads read the previous-token head in their keys
    assert all(x > max(o.values()) for x, o in zip(check.scores, check.other_modes, strict=True))


def test_pair_check_and_standouts_go_each_way():
    L, H = 2, 2
    scores = {m: np.full((L, H, L, H), np.nan) for m in C.MODES}
    for m in C.MODES:
        scores[m][0, :, 1, :] = 0.1
    scores["K"][0, 0, 1, 1] = 0.5
    comp = C.Composition(scores)
    base = C.Baseline({m: 0.1 for m in C.MODES}, {m: 0.01 for m in C.MODES})
    assert C.check_pairs(comp, base, [(0, 0)], [(1, 1)]).verdict == "stands_out"
    assert C.check_pairs(comp, base, [(0, 0)], [(1, 0)]).verdict == "does_not_stand_out"
    assert C.check_pairs(comp, base, [(0, 0)], [(1, 0), (1, 1)]).verdict == "partly"
    assert C.check_pairs(comp, base, [(1, 0)], [(0, 1)]).verdict == "no_pairs"
    top = C.standouts(comp, base)
    assert [(s.mode, s.h1, s.h2) for s in top] == [("K", (0, 0), (1, 1))] and top[0].z == pytest.approx(40)


@pytest.mark.parametrize("kind", SVD.KINDS)
def test_factored_svd_equals_the_full_one(bundled, kind):
    w = bundled.attention_weights(2)
    A, B = (w.W_V[0], w.W_O[0]) if kind == "OV" else (w.W_Q[0], w.W_K[0].T)
    U, S, Vh = SVD.factored_svd(A.detach(), B.detach())
    full = (A.double() @ B.double()).detach()
    torch.testing.assert_close(U @ torch.diag(S) @ Vh, full, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(S, torch.linalg.svdvals(full)[: len(S)], atol=1e-9, rtol=1e-9)
    r = SVD.head_svd(bundled, 2, 0, kind, n_dirs=3, k=4)
    np.testing.assert_allclose(r.singular_values, S.numpy(), rtol=1e-6)
    assert len(r.directions) == 3 and all(d.out_scores[0] > 0 for d in r.directions)
    assert all(i >= 3 for d in r.directions for i in d.in_ids)  # no special tokens
    assert 0 < r.top_share <= 1
    with pytest.raises(ValueError):
        SVD.head_svd(bundled, 0, 0, "XY")


def test_direct_path_of_a_tied_model_predicts_the_token_itself(bundled):
    dp = DP.direct_path(bundled)
    assert dp.tied and dp.self_top1 > 0.9 and dp.self_rank_median == 1
    logits = DP.direct_logits(bundled, torch.tensor([10, 11]))
    with torch.no_grad():
        ref = bundled.unembed(bundled.W_E[[10, 11]])
    torch.testing.assert_close(logits[:, 3:], ref[:, 3:])


def test_bigram_check_finds_a_planted_bigram(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    rows = torch.tensor([[0] + [5, 6] * 30] * 2)  # after 5 always 6, after 6 always 5
    check = DP.bigram_check(lm, rows)
    assert check.n_sources == 2 and 0 <= check.top1_agreement <= 1 and check.median_rank >= 1
    assert DP.bigram_check(lm, torch.tensor([[0, 5, 6]])).n_sources == 0
