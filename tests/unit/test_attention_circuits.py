"""OV and QK circuits: the copying score computed two ways, the effective embedding against the
model's own modules, the diagonal measure against the explicit table, and the distance profile on
hand-built scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.bundled.report import load_report, report_heads
from core.interp.attention import weight_circuits as C
from core.models import act_name, load_model
from core.models.loading import BUNDLED_DIR

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")


@pytest.fixture(scope="module")
def models(tiny_model_dir):
    return {arch: load_model(str(tiny_model_dir(arch))) for arch in ARCHS}


def test_eigen_copying_score_on_known_matrices():
    assert C.eigen_copying_score(torch.eye(5)) == pytest.approx(1.0)
    assert C.eigen_copying_score(-3 * torch.eye(5)) == pytest.approx(-1.0)
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-i: neither copies nor suppresses
    assert C.eigen_copying_score(rotation) == pytest.approx(0.0, abs=1e-12)
    assert C.eigen_copying_score(torch.diag(torch.tensor([3.0, -1.0]))) == pytest.approx(0.5)


@pytest.mark.parametrize("mode", C.MODES)
@pytest.mark.parametrize("arch", ARCHS)
def test_copying_score_einsum_equals_explicit_full_table(models, arch, mode):
    """d_head x d_head matrices via einsum == eigenvalues of the full [d_vocab, d_vocab] product."""
    lm = models[arch]
    fast = C.copying_scores(lm, mode)
    full = np.array([[C.copying_score_full(lm, layer, head, mode) for head in range(lm.cfg.n_heads)]
                     for layer in range(lm.cfg.n_layers)])
    assert fast.shape == (lm.cfg.n_layers, lm.cfg.n_heads)
    assert np.abs(fast - full).max() < 1e-8
    assert np.abs(fast).max() > 0.05  # not trivially zero


@pytest.mark.parametrize("arch", ARCHS)
def test_effective_embed_equals_the_layer_norm_module(models, arch):
    """E (direct) = ln1(W_E) with the bias removed, for LayerNorm and RMSNorm alike."""
    lm = models[arch]
    ids = C.vocab_ids(lm)
    for layer in range(lm.cfg.n_layers):
        ln1 = lm.adapter.block_modules(layer).ln1
        with torch.no_grad():
            expected = ln1(lm.W_E[ids]).double()
        if getattr(ln1, "bias", None) is not None:
            expected = expected - ln1.bias.detach().double()
        assert torch.allclose(C.effective_embed(lm, layer, ids, "direct"), expected, atol=1e-5)


def test_in_context_rows_of_layer_0_are_embedding_plus_position(models):
    lm = models["gpt2"]  # learned positions: resid_pre[0] at position 1 = W_E[t] + W_pos[1]
    ids = C.vocab_ids(lm)[:7]
    rows = C.token_rows(lm, ids, "in_context")
    assert torch.allclose(rows[0], (lm.W_E[ids] + lm.W_pos[1]).detach(), atol=1e-6)
    _, cache = lm.run_with_cache(torch.tensor([[lm.tokenizer.bos_token_id, int(ids[3])]]),
                                 names=[act_name("resid_pre", 1)])
    assert torch.allclose(rows[1][3], cache[act_name("resid_pre", 1)][0, 1], atol=1e-5)


@pytest.mark.parametrize("arch", ("gpt2", "llama"))
def test_ov_top_tokens_and_ranks_match_the_full_table(models, arch):
    lm = models[arch]
    ids = C.vocab_ids(lm)
    layer, head = 1, 2
    table = C.ov_table(lm, layer, head)  # [n_vocab, n_vocab], rows and columns in ids order
    src = [int(ids[0]), int(ids[5]), int(ids[9])]
    top = C.ov_top_tokens(lm, layer, head, src, k=3)
    for row, s in enumerate(src):
        i = int((ids == s).nonzero())
        order = torch.argsort(table[i], descending=True)
        assert top.top_ids[row].tolist() == ids[order[:3]].tolist()
        assert top.self_rank[row] == int((table[i] > table[i, i]).sum()) + 1


def test_diagonal_for_all_heads_equals_head_by_head(models):
    lm = models["gpt_neox"]
    table = C.diagonal_copying_all(lm)
    for layer, head in [(0, 0), (1, 3)]:
        one = C.diagonal_copying(lm, layer, head)
        assert table["top5"][layer, head] == pytest.approx(one.top5)
        assert table["median_rank"][layer, head] == pytest.approx(one.median_rank)
        assert one.n_vocab == one.n_tokens == len(C.vocab_ids(lm))


# -- QK positional preference -----------------------------------------------------------------------
def explicit_profile(scores: np.ndarray) -> np.ndarray:
    """The distance profile by loops: [batch, head, q, k] -> [head, n] (first token left out)."""
    batch, heads, n, _ = scores.shape
    total, count = np.zeros((heads, n)), np.zeros((heads, n))
    for b, h, q in np.ndindex(batch, heads, n):
        keys = [k for k in range(1, q + 1) if np.isfinite(scores[b, h, q, k])]
        if q < 1 or not keys:
            continue
        mean = np.mean([scores[b, h, q, k] for k in keys])
        for k in keys:
            total[h, q - k] += scores[b, h, q, k] - mean
            count[h, q - k] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def test_distance_profile_matches_loops_and_finds_a_previous_token_preference():
    n = 9
    q, k = np.indices((n, n))
    scores = np.where(k <= q, -np.abs((q - k) - 1.0), -np.inf)[None, None]  # peak at distance 1
    scores = np.concatenate([scores, np.random.default_rng(0).standard_normal((1, 1, n, n))], axis=1)
    scores[:, 1][np.broadcast_to(k > q, (1, n, n))] = -np.inf
    profile = C.distance_profile(torch.tensor(scores))
    assert np.allclose(profile, explicit_profile(scores), equal_nan=True)
    assert int(np.nanargmax(profile[0])) == 1
    flat = C.distance_profile(torch.zeros(2, 1, n, n).masked_fill(torch.tensor(k > q), float("-inf")))
    assert np.allclose(flat[:, : n - 1], 0) and np.isnan(flat[0, n - 1])  # distance n-1 needs key 0


def test_qk_profile_on_rotary_and_local_window_models(models):
    profile = C.qk_distance_profile(models["llama"], 1, n=3, length=16)
    assert profile.shape == (4, 16) and np.isfinite(profile[:, :15]).all()
    # GPT-Neo's layer 1 is a local layer with a window of 4: keys 4 or more back are never visible
    local = C.qk_distance_profile(models["gpt_neo"], 1, n=3, length=16)
    assert np.isfinite(local[:, :4]).all() and np.isnan(local[:, 4:]).all()
    assert np.isfinite(C.qk_distance_profile(models["gpt_neo"], 0, n=3, length=16)[:, :15]).all()


# -- the bundled model ------------------------------------------------------------------------------
def test_bundled_copying_two_ways_and_the_induction_heads_copy():
    lm = load_model()
    fast = C.copying_scores(lm)
    listed = report_heads(load_report(BUNDLED_DIR))["induction"]
    layer, head, _ = max(listed, key=lambda t: t[2])
    assert C.copying_score_full(lm, layer, head) == pytest.approx(fast[layer, head], abs=1e-8)
    assert fast[layer, head] > 0.5  # the page says the induction heads copy; this is the measurement
    assert fast[layer, head] > np.median(fast)
