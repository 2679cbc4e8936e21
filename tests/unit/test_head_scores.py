"""Head scores on hand-built attention patterns, where the right answer is known exactly."""

from __future__ import annotations

import pytest
import torch

from core.interp.attention import head_scores as H

L = 8  # half_len
N = 1 + 2 * L  # BOS + x + x


def pattern_from_targets(targets: list[int]) -> torch.Tensor:
    """[1, 1, N, N] pattern where query q puts all its attention on key targets[q]."""
    p = torch.zeros(1, 1, len(targets), len(targets))
    for q, k in enumerate(targets):
        assert 0 <= k <= q
        p[0, 0, q, k] = 1.0
    return p


def previous_token_pattern():
    return pattern_from_targets([max(q - 1, 0) for q in range(N)])


def bos_pattern():
    return pattern_from_targets([0] * N)


def induction_pattern():
    return pattern_from_targets([q - L + 1 if q > L else 0 for q in range(N)])


def duplicate_pattern():
    return pattern_from_targets([q - L if q > L else 0 for q in range(N)])


def scores(pattern):
    return {k: float(v[0]) for k, v in H.all_scores(pattern, L).items()}


def test_pure_previous_token_pattern():
    s = scores(previous_token_pattern())
    assert s["previous_token"] == pytest.approx(1.0)
    assert s["induction"] == pytest.approx(0.0) and s["duplicate_token"] == pytest.approx(0.0)
    assert s["first_token"] == pytest.approx(0.0) and s["current_token"] == pytest.approx(0.0)
    assert s["local_window"] == pytest.approx(1.0)  # previous-token heads are narrow local heads


def test_pure_bos_pattern():
    s = scores(bos_pattern())
    assert s["first_token"] == pytest.approx(1.0)
    assert s["previous_token"] == pytest.approx(1 / (N - 1))  # only q = 1, whose previous is BOS
    assert s["induction"] == 0 and s["duplicate_token"] == 0


def test_pure_induction_and_duplicate_patterns():
    s = scores(induction_pattern())
    assert s["induction"] == pytest.approx(1.0) and s["duplicate_token"] == 0
    assert s["previous_token"] < 0.1
    d = scores(duplicate_pattern())
    assert d["duplicate_token"] == pytest.approx(1.0) and d["induction"] == 0


def test_uniform_causal_pattern_scores_are_averages():
    p = torch.tril(torch.ones(N, N))
    p = (p / p.sum(-1, keepdim=True))[None, None]  # [1, 1, N, N], rows sum to 1
    s = scores(p)
    expected_prev = sum(1 / (q + 1) for q in range(1, N)) / (N - 1)
    assert s["previous_token"] == pytest.approx(expected_prev)
    assert s["induction"] == pytest.approx(s["duplicate_token"])
    assert all(0 <= v <= 1 for v in s.values())


def test_heads_are_scored_separately_and_batch_is_averaged():
    p = torch.cat([previous_token_pattern(), induction_pattern()], dim=1)  # [1, 2 heads, N, N]
    batch = torch.cat([p, p, p])  # [3, 2, N, N]
    assert H.previous_token_score(batch).tolist() == pytest.approx(
        H.previous_token_score(p[0]).tolist())
    assert H.induction_score(batch, L).tolist() == pytest.approx([0.0, 1.0])


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        H.induction_score(previous_token_pattern(), L + 1)
    with pytest.raises(ValueError):
        H.previous_token_score(torch.zeros(2, 3, 4))  # not square


def test_head_scores_result_lists_heads_best_first():
    table = torch.tensor([[0.1, 0.7], [0.9, 0.4]])
    result = H.HeadScores({"induction": table}, n=1, half_len=L, seed=0)
    heads = result.heads("induction", 0.5)
    assert [(a, b) for a, b, _ in heads] == [(1, 0), (0, 1)]
    assert result.best("induction")[:2] == (1, 0)


def test_head_scores_on_a_tiny_model(tmp_path):
    from core.models import load_model
    from tests.tiny_models import build

    lm = load_model(str(build("gpt2", tmp_path / "gpt2")))
    result = H.head_scores(lm, n=4, half_len=6, seed=0)
    for kind in H.KINDS:
        table = result.scores[kind]
        assert table.shape == (lm.cfg.n_layers, lm.cfg.n_heads)
        assert (table >= -1e-6).all() and (table <= 1 + 1e-6).all()
