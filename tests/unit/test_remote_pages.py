"""What the four wired pages compute on a model whose weights are elsewhere (an NNsightLM), against
what they compute on the same weights in a HookedLM, on the tiny model of every family:

- Residual stream: the logit lens from two lens requests, direct logit attribution from four small
  requests, the ground truth over a task set, the stream anatomy (core.interp.residual.reads);
- Attention: every pattern (no value vectors: v is not offered through nnsight), the head scores;
- Steering: the vector, the texts (same tokens), the word shifts and the curves;
- Patching: a sweep on a budget (core.interp.patching.reads) against the engine's exact sweep.

Tolerance: 1e-5 on probabilities, logits, patterns and head scores (float32 reads, float64 sums);
1e-4 on logit differences and their parts (sums of up to ~40 float32 terms); generated tokens equal.
The same reads also go through the stand-in NDIF server of tests/unit/test_remote.py (serialized
and run as NDIF would), and give the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.attention import head_scores as HS
from core.interp.attention import patterns as A
from core.interp.patching import reads as PR
from core.interp.patching.engine import PatchEngine
from core.interp.patching.sweeps import run_sweep
from core.interp.patching.tasks import build_task
from core.interp.residual import anatomy as AN
from core.interp.residual import dla as D
from core.interp.residual import ground_truth as GT
from core.interp.residual import logit_lens as L
from core.interp.residual import reads as R
from core.interp.residual import tasks as T
from core.interp.steering import effect as E
from core.interp.steering import fluency as F
from core.interp.steering import targets as TG
from core.interp.steering import vectors as S
from core.models import load_model
from core.models.backend import Write
from core.models.generation import SamplingSettings
from core.models.hook_names import act_name
from core.models.remote import RequestLog, use_log

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "llama")
ATOL, ATOL_LOGIT = 1e-5, 1e-4
TEXT = "the cat sat on the mat and the dog"
PAIRS = [("the cat is happy", "the cat is sad"), ("Mary ran home", "John ran home")]
CUSTOM = ("the cat sat on the mat and the dog", "the dog sat on the mat and the dog", " cat", " dog")


@pytest.fixture(scope="module", params=ARCHS)
def pair(request, tiny_model_dir):
    from core.models.nnsight_backend import NNsightLM

    folder = tiny_model_dir(request.param)
    return load_model(str(folder)), NNsightLM.local(folder)


@pytest.fixture(scope="module")
def gpt2_pair(tiny_model_dir):
    from core.models.nnsight_backend import NNsightLM

    folder = tiny_model_dir("gpt2")
    return load_model(str(folder)), NNsightLM.local(folder)


def push(lm, name=None):
    """A steering push as a write (what an active intervention is)."""
    g = torch.Generator().manual_seed(3)
    return [(name or act_name("resid_post", 0),
             Write(name or act_name("resid_post", 0), torch.randn(lm.cfg.d_model, generator=g)))]


# -- residual stream -------------------------------------------------------------------------------------
def test_the_reads_path_is_taken_for_nnsight_models_only(pair):
    here, there = pair
    assert R.has_weights(here) and not R.has_weights(there)
    assert PR.has_weights(here) and not PR.has_weights(there)


@pytest.mark.parametrize("with_push", [False, True])
def test_logit_lens_from_two_requests_equals_the_full_lens(pair, with_push):
    here, there = pair
    tokens = here.to_tokens(TEXT)
    targets = torch.arange(tokens.shape[1]) % 20 + 3
    full = L.lens_grid(here, tokens, targets, hooks=push(here) if with_push else ())
    log = RequestLog()
    with use_log(log):
        small = R.lens_grid(there, tokens, targets, hooks=push(there) if with_push else ())
    assert len(log) == 2  # the top 5, then the targets
    assert np.array_equal(full.top_ids, small.top_ids)
    np.testing.assert_allclose(small.top_probs, full.top_probs, atol=ATOL, rtol=0)
    np.testing.assert_allclose(small.target_prob, full.target_prob, atol=ATOL, rtol=0)
    assert np.isnan(small.kl_to_final).all() and small.str_tokens == full.str_tokens
    assert R.final_top(there, tokens, push(there) if with_push else ()) == int(full.final_top[-1])


@pytest.mark.parametrize("with_push", [False, True])
def test_dla_from_four_requests_equals_the_full_decomposition(pair, with_push):
    here, there = pair
    tokens = torch.cat([here.to_tokens(TEXT), here.to_tokens("the dog sat on red mat and a cat")])
    pos, a, b = [9, 6], [4, 5], [5, 4]
    full = D.direct_logit_attribution(here, tokens, pos, a, b, hooks=push(here) if with_push else ())
    log = RequestLog()
    with use_log(log):
        small = R.direct_logit_attribution(there, tokens, pos, a, b, hooks=push(there) if with_push else ())
    assert len(log) == 4
    assert small.labels == full.labels and small.kinds == full.kinds
    np.testing.assert_allclose(small.values, full.values, atol=ATOL_LOGIT, rtol=0)
    np.testing.assert_allclose(small.head_table, full.head_table, atol=ATOL_LOGIT, rtol=0)
    np.testing.assert_allclose(small.accumulated, full.accumulated, atol=ATOL_LOGIT, rtol=0)
    assert small.total == pytest.approx(full.total, abs=ATOL_LOGIT) and small.error < ATOL_LOGIT
    assert ("hooks" in small.kinds) == with_push  # a push appears as its own part (compared above)


def test_the_reads_dla_also_runs_on_a_hooked_lm(gpt2_pair):
    """The helpers fall back to whole caches on a HookedLM: the same recipe, the same numbers."""
    here, _ = gpt2_pair
    tokens = here.to_tokens(TEXT)
    full = D.direct_logit_attribution(here, tokens, [9], [4], [5])
    small = R.direct_logit_attribution(here, tokens, [9], [4], [5])
    np.testing.assert_allclose(small.values, full.values, atol=ATOL_LOGIT, rtol=0)


def test_ground_truth_and_anatomy_equal_the_local_ones(pair):
    here, there = pair
    ts = T.task_set(here, "induction", n=8)
    full = GT.task_truth(here, ts)
    small = R.task_truth(there, ts)
    np.testing.assert_allclose(small.logit.share_top, full.logit.share_top, atol=ATOL, rtol=0)
    np.testing.assert_allclose(small.logit.answer_prob, full.logit.answer_prob, atol=ATOL, rtol=0)
    np.testing.assert_allclose(small.dla.values, full.dla.values, atol=ATOL_LOGIT, rtol=0)
    assert small.writers.heads == full.writers.heads and small.tuned is None
    tokens = here.to_tokens(TEXT)
    a, b = AN.stream_anatomy(here, tokens), R.anatomy(there, tokens)
    np.testing.assert_allclose(b.write_norm, a.write_norm, atol=ATOL, rtol=0)
    np.testing.assert_allclose(b.cos_input, a.cos_input, atol=ATOL, rtol=0)


def test_reads_that_would_bring_back_too_much_are_refused_with_the_size(gpt2_pair, monkeypatch):
    _, there = gpt2_pair
    assert R.anatomy_fits(there, 10)
    monkeypatch.setattr(R, "MAX_READ_BYTES", 1000)
    assert not R.anatomy_fits(there, 10)
    with pytest.raises(ValueError, match="would read .* MB"):
        R.anatomy(there, there.to_tokens(TEXT))
    assert R.task_prompts(there, limit=R.dla_row_bytes(there) * 3) == 3


# -- attention -------------------------------------------------------------------------------------------
def test_patterns_and_head_scores_equal_the_local_ones(pair):
    here, there = pair
    tokens = here.to_tokens(TEXT)
    full, small = A.run_attention(here, tokens), A.run_attention(there, tokens)
    np.testing.assert_allclose(small.pattern, full.pattern, atol=ATOL, rtol=0)
    assert small.value_norm is None and full.value_norm is not None  # v is not offered through nnsight
    assert not A.has_values(there) and A.has_values(here)
    s_full, s_small = HS.head_scores(here, n=4, half_len=6), HS.head_scores(there, n=4, half_len=6)
    for kind in HS.KINDS:
        torch.testing.assert_close(s_small.scores[kind], s_full.scores[kind], atol=ATOL, rtol=0)


# -- steering --------------------------------------------------------------------------------------------
def test_steering_numbers_and_texts_equal_the_local_ones(pair):
    here, there = pair
    out = []
    for lm in (here, there):
        sv = S.mean_difference(lm, PAIRS, 0)
        t = TG.targets_from_pairs(lm, PAIRS)
        tokens = lm.to_tokens("the dog sat on")
        texts = F.compare_texts(lm, sv, tokens, 3.0, SamplingSettings(max_new_tokens=6, seed=1), start_pos=2)
        point = E.point_effect(lm, sv, t, 3.0, start_pos=2)
        curves = E.effect_curves(lm, sv, t, E.CurveSettings((-2.0, 0.0, 2.0), 0, SamplingSettings(
            max_new_tokens=4, seed=0, stop_at_eos=False)), fluency_tokens=tokens)
        out.append((sv, texts, point, curves))
    (sv1, t1, p1, c1), (sv2, t2, p2, c2) = out
    torch.testing.assert_close(sv2.vector, sv1.vector, atol=ATOL, rtol=0)
    assert t1.plain == t2.plain and t1.steered == t2.steered  # the same tokens
    np.testing.assert_allclose(t2.steered_perplexity, t1.steered_perplexity, rtol=1e-4)
    np.testing.assert_allclose(p2.vector.p_plus, p1.vector.p_plus, atol=ATOL, rtol=0)
    np.testing.assert_allclose(p2.vector.logit_diff, p1.vector.logit_diff, atol=ATOL_LOGIT, rtol=0)
    for a, b in zip(c1, c2, strict=True):
        np.testing.assert_allclose(b.p_plus, a.p_plus, atol=ATOL, rtol=0)
        np.testing.assert_allclose(b.perplexity, a.perplexity, rtol=1e-4)


def test_per_row_start_positions_become_one_write_per_start(gpt2_pair):
    here, _ = gpt2_pair
    sv = S.SteeringVector(torch.ones(here.cfg.d_model), act_name("resid_post", 0), "test", "ones")
    writes = S.steering_writes(sv, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2, 5, 2]))
    assert sorted(w.start_pos for w in writes) == [2, 5] and S.steering_writes(sv, 0.0) == []
    tokens = here.to_tokens(TEXT).repeat(3, 1)
    with here.hooks([(sv.hook_name, S.steering_hook(sv.vector, torch.tensor([1.0, 2.0, 3.0]),
                                                    torch.tensor([2, 5, 2])))]):
        ref = here(tokens)
    with S.steer(here, sv, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2, 5, 2])):
        got = here(tokens)
    torch.testing.assert_close(got, ref, atol=0, rtol=0)


# -- patching --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", PR.SWEEPS)
@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_a_sweep_on_a_budget_equals_the_engine_where_it_measured(gpt2_pair, kind, direction):
    here, there = gpt2_pair
    task = build_task(here, "custom", custom=CUSTOM)
    exact = run_sweep(PatchEngine(here, task), kind, direction)
    budget = 20
    bs = PR.budget_sweep(there, task, kind, direction, budget)
    m = bs.measured
    assert bs.n_runs == min(budget, bs.n_cells - bs.n_noops) and m.sum() == bs.n_runs + bs.n_noops
    np.testing.assert_allclose(bs.result.raw[m], exact.raw[m], atol=ATOL_LOGIT, rtol=0)
    assert np.isnan(bs.result.raw[~m]).all()
    # the runs it spent are the cells attribution ranks first
    gap = np.abs(bs.estimate - (0.0 if direction == "denoise" else 1.0))
    if (~m).any():
        assert gap[bs.ran].min() >= gap[~m].max() - 1e-12


def test_the_budget_baseline_and_attribution_view(pair):
    here, there = pair
    task = build_task(here, "custom", custom=CUSTOM)
    engine = PatchEngine(here, task)
    base = PR.baseline(there, task)
    assert base.clean == pytest.approx(engine.baseline.clean, abs=ATOL_LOGIT)
    assert base.corrupt == pytest.approx(engine.baseline.corrupt, abs=ATOL_LOGIT)
    bs = PR.budget_sweep(there, task, "heads_by_pos", "denoise", 64)
    a = PR.attribution_result(bs)
    assert len(a.names) == bs.n_runs and np.isfinite(a.correlation("atp"))
    with pytest.raises(ValueError, match="needs the model here"):
        PR.budget_sweep(there, task, "head_parts", "denoise", 8)


def test_the_engine_runs_under_interventions_shifted_for_suffix_runs(gpt2_pair):
    """Interventions apply to every engine run; a write from position 4 on stays at position 4 in a
    run that starts later (a suffix run with the prefix in the KV cache)."""
    here, _ = gpt2_pair
    task = build_task(here, "custom", custom=CUSTOM)
    g = torch.Generator().manual_seed(0)
    late = [(act_name("resid_post", 0), Write(act_name("resid_post", 0),
                                             torch.randn(here.cfg.d_model, generator=g) * 3, start_pos=4))]
    engine = PatchEngine(here, task, hooks=late)
    with here.hooks(late):
        ref = PatchEngine(here, task).baseline  # the same runs, hooks around everything
    assert engine.baseline.clean == pytest.approx(ref.clean, abs=1e-6)
    assert engine.baseline.clean != pytest.approx(PatchEngine(here, task).baseline.clean, abs=1e-3)
    naive = []  # one full forward pass per patch, under the write, as a test oracle
    with here.hooks(late):
        _, src = here.run_with_cache(task.clean, names=[act_name("resid_post", 1)])
        for p in range(task.n_pos):
            patch = Write(act_name("resid_post", 1), src[act_name("resid_post", 1)][:, p: p + 1], mode="set",
                          positions=(p,))
            with here.hooks([(patch.name, patch)]):
                logits = here(task.corrupt)[:, -1]
            naive.append(float(logits[0, task.answers[0, 0]] - logits[0, task.answers[0, 1]]))
    got = run_sweep(engine, "stream", "denoise")
    np.testing.assert_allclose(got.raw[0, -1], naive, atol=ATOL_LOGIT, rtol=0)


# -- through the stand-in NDIF server ---------------------------------------------------------------------
@pytest.fixture()
def remote_lm(tiny_model_dir):
    from core.models import remote as rm
    from core.models.nnsight_backend import NNsightLM, connect
    from tests.unit.test_remote import REPO, VALID_KEY, FakeNDIF

    folder = tiny_model_dir("gpt2")
    fake = FakeNDIF({REPO: NNsightLM.local(folder)._envoy})
    rm.forget_listing()
    yield connect(REPO, key_source=lambda: VALID_KEY, host=fake.url, folder=str(folder))
    fake.close()
    rm.forget_listing()


def test_the_pages_reads_travel_to_the_server_and_back_unchanged(remote_lm, gpt2_pair):
    here, _ = gpt2_pair
    tokens = here.to_tokens(TEXT)
    log = RequestLog()
    with use_log(log):
        dla = R.direct_logit_attribution(remote_lm, tokens, [9], [4], [5], hooks=push(remote_lm))
        lens = R.lens_grid(remote_lm, tokens, torch.arange(tokens.shape[1]) + 3)
        task = build_task(here, "custom", custom=CUSTOM)
        bs = PR.budget_sweep(remote_lm, task, "heads_by_pos", "denoise", 6)
        sv = S.mean_difference(remote_lm, PAIRS, 0)
        texts = F.compare_texts(remote_lm, sv, tokens[:, :4], 3.0, SamplingSettings(max_new_tokens=4, seed=1))
    assert {r.where for r in log.records()} == {"NDIF"} and all(r.status == "ok" for r in log.records())
    full = D.direct_logit_attribution(here, tokens, [9], [4], [5], hooks=push(here))
    np.testing.assert_allclose(dla.values, full.values, atol=ATOL_LOGIT, rtol=0)
    assert np.array_equal(lens.top_ids, L.lens_grid(here, tokens, torch.arange(tokens.shape[1]) + 3).top_ids)
    exact = run_sweep(PatchEngine(here, task), "heads_by_pos", "denoise")
    np.testing.assert_allclose(bs.result.raw[bs.measured], exact.raw[bs.measured], atol=ATOL_LOGIT, rtol=0)
    local = F.compare_texts(here, S.mean_difference(here, PAIRS, 0), tokens[:, :4], 3.0,
                            SamplingSettings(max_new_tokens=4, seed=1))
    assert texts.steered == local.steered and texts.plain == local.plain
