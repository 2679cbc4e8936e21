"""Every verdict of the patching page on constructed results that go each way, and the attribution
estimates against exact patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.patching import verdicts as V
from core.interp.patching.attribution import AttributionResult, attention_scale, attribute
from core.interp.patching.engine import PatchEngine, Site
from core.interp.patching.metric import Baseline
from core.interp.patching.path_patching import PathResult
from core.interp.patching.sweeps import SweepResult, run_sweep
from core.interp.patching.tasks import build_task, induction_task
from core.models import act_name, load_model

B = Baseline(10.0, 0.0, np.array([10.0]), np.array([0.0]))


def sweep(kind: str, normalised: np.ndarray, direction: str = "denoise", rows=None, cols=None) -> SweepResult:
    panels, n_rows, n_cols = normalised.shape
    rows = rows or tuple(str(i) for i in range(n_rows))
    cols = cols or tuple(f"{i} 'x'" for i in range(n_cols))
    return SweepResult(kind, direction, normalised * 10, normalised, ("output",) * panels, rows, cols,
                       ("h",) * n_rows, tuple((i, None) for i in range(n_rows)), B, 0.1, 1, normalised.size)


def test_pair_verdict_both_ways():
    good = V.pair_verdict(Baseline(5.0, -3.0, None, None))
    assert good.usable and good.clean_right and good.corrupt_flips
    weak = V.pair_verdict(Baseline(-0.1, 0.2, None, None))
    assert not weak.usable and not weak.clean_right and not weak.corrupt_flips


def test_sweep_verdict_names_the_strong_patch_or_nothing():
    grid = np.zeros((1, 3, 4))
    grid[0, 2, 3] = 0.9
    grid[0, 1, 0] = 0.2
    v = V.sweep_verdict(sweep("attn_out", grid))
    assert v.top[0] == ("output", "2", "3 'x'", pytest.approx(0.9)) and v.n_strong == 1 and v.n_notable == 2
    quiet = V.sweep_verdict(sweep("attn_out", np.full((1, 3, 4), 0.05)))
    assert quiet.top == () and quiet.n_notable == 0


def test_noising_effects_count_what_is_destroyed():
    grid = np.ones((1, 2, 2))
    grid[0, 0, 1] = 0.0  # noising this destroys everything
    v = V.sweep_verdict(sweep("attn_out", grid, direction="noise"))
    assert v.top == (("output", "0", "1 'x'", 1.0),)


def test_the_stream_route_follows_the_position_that_matters():
    grid = np.zeros((1, 3, 3))
    grid[0, 0, 1] = grid[0, 1, 1] = 1.0  # embed and layer 0: position 1
    grid[0, 2, 2] = 1.0  # layer 1: position 2
    v = V.sweep_verdict(sweep("stream", grid, rows=("embed", "0", "1")))
    assert V.route_segments(v.route) == [("embed", "0", "1 'x'"), ("1", "1", "2 'x'")]


def attribution(exact, atp, star, groups) -> AttributionResult:
    names = tuple(f"c{i}" for i in range(len(exact)))
    return AttributionResult("noise", names, tuple(groups), np.array(exact), np.array(atp), np.array(star),
                             0.0)


def test_attribution_verdict_both_ways():
    good = V.attribution_verdict(attribution([0.0, -0.5, -0.9], [0.0, -0.45, -0.6], [0.0, -0.49, -0.85],
                                             ["q", "k", "output"]))
    assert good.tracks and good.qk_fix_helps and good.failures == ()
    assert good.qk_miss_star < good.qk_miss_atp
    bad = attribution([0.0, -0.9, 0.1, 0.0], [0.3, 0.0, 0.1, -0.2], [0.3, 0.0, 0.1, -0.2],
                      ["q", "k", "v", "output"])
    v = V.attribution_verdict(bad)
    assert not v.tracks and not v.qk_fix_helps
    assert [f[0] for f in v.failures] == ["c1", "c0", "c3"] and not v.failures_large
    large = V.attribution_verdict(attribution([0.0, -0.9], [0.0, -0.5], [0.0, -0.5], ["output", "output"]))
    assert large.failures_large


def test_circuit_and_ground_truth_verdicts():
    assert V.circuit_verdict(0.9, 10, {(1, 0)}).level == "faithful"
    assert V.circuit_verdict(0.6, 10, set()).level == "partial"
    assert V.circuit_verdict(0.1, 10, set()).level == "unfaithful"
    g = V.ground_truth_verdict({(2, 0), (3, 1), (1, 3)}, {(2, 0), (3, 1), (3, 2)})
    assert g.precision == pytest.approx(2 / 3) and g.recall == pytest.approx(2 / 3)
    assert g.missed == ((3, 2),) and g.extra == ((1, 3),)
    perfect = V.ground_truth_verdict({(2, 0)}, {(2, 0)})
    assert (perfect.precision, perfect.recall, perfect.missed, perfect.extra) == (1.0, 1.0, (), ())


def test_cross_check_agreement_and_disagreement():
    heads = np.ones((1, 2, 2))
    heads[0, 1, 0] = 0.2  # noising head 1.0 destroys 80%
    heads[0, 0, 1] = 0.85  # head 0.1: 15%
    h = sweep("heads", heads, direction="noise")
    all_heads = ((0, 0), (0, 1), (1, 0), (1, 1))
    raw = np.full((4, 4, 3), np.nan)
    norm = raw.copy()
    norm[0, 2, 1] = 0.5  # 0.0 -> 1.0 k carries half
    direct = np.array([1, 1, 0.3, 1.0])  # 1.0 -> logits carries 70% (noising: 1 - 0.3)
    paths = PathResult("noise", all_heads, (0, 1, 2, 3), raw, norm, np.zeros(4), direct, B, 0.0, 0, 0)
    x = V.cross_check(h, paths, {(1, 0)}, 0.9, 0.85)
    assert x.found["exact patching"] == ((0, 1), (1, 0)) and x.found["path patching"] == ((0, 0), (1, 0))
    assert x.agreed == ((1, 0),) and dict(x.disputed)[(0, 1)] == ("exact patching",)
    assert x.ablations_agree
    agree = V.cross_check(h, paths, {(1, 0)}, 0.9, 0.3)
    assert not agree.ablations_agree


# -- attribution on the real model -------------------------------------------------------------------
def test_attention_scale_is_read_off_the_cache(tiny_model_dir):
    bundled = load_model()
    engine = PatchEngine(bundled, build_task(bundled, "ioi", n=2))
    c = engine.caches["clean"]
    scale = attention_scale(c[act_name("q", 1)], c[act_name("k", 1)], c[act_name("pattern", 1)])
    assert scale == pytest.approx(bundled.cfg.d_head ** -0.5, rel=1e-3)
    neo = load_model(str(tiny_model_dir("gpt_neo")))  # GPT-Neo does not scale its scores
    c = PatchEngine(neo, induction_task(neo, n=2, half_len=6, shown=4, moved_to=1)).caches["clean"]
    scale = attention_scale(c[act_name("q", 0)], c[act_name("k", 0)], c[act_name("pattern", 0)])
    assert scale == pytest.approx(1.0, rel=1e-3)


def test_the_qk_fix_is_exact_up_to_the_pattern():
    """AtP* recomputes the pattern of a key patch exactly: check it against the pattern of a real run."""
    lm = load_model()
    task = build_task(lm, "induction", n=2)
    engine = PatchEngine(lm, task)
    layer, head = 3, 1
    c, k = engine.caches["clean"], engine.caches["corrupt"]
    q_n, k_n, p_n = (act_name(x, layer) for x in ("q", "k", "pattern"))
    scale = attention_scale(c[q_n], c[k_n], c[p_n])
    dscore = torch.einsum("bqhd,bkhd->bhqk", c[q_n], k[k_n] - c[k_n])
    pat = c[p_n]
    log_p = torch.where(pat > 0, pat.clamp_min(1e-38).log(), float("-inf"))
    fixed = torch.softmax(log_p + scale * dscore, -1)
    seen = {}

    def patch_k(act, hook):
        act = act.clone()
        act[:, :, head] = k[k_n][:, :, head]
        return act

    with torch.no_grad(), lm.hooks([(k_n, patch_k)]):
        _, cache = lm.run_with_cache(task.clean, names=[p_n])
    seen["p"] = cache[p_n]
    torch.testing.assert_close(fixed[:, head], seen["p"][:, head], atol=1e-5, rtol=1e-4)


def test_atp_tracks_the_exact_patches_and_names_the_misses():
    lm = load_model()
    engine = PatchEngine(lm, build_task(lm, "ioi"))
    by_pos, parts = run_sweep(engine, "heads_by_pos", "noise"), run_sweep(engine, "head_parts", "noise")
    a = attribute(engine, by_pos, parts)
    assert len(a.names) == 16 * engine.task.n_pos + 4 * 16
    assert a.correlation("atp") > 0.9
    last = engine.task.n_pos - 1
    exact_z = engine.run([(Site(act_name("z", 3), last, 0),)], source="corrupt", target="clean")
    i = a.names.index(f"3.0 @ {engine.task.labels[-1]}")
    b = engine.baseline
    assert a.exact[i] == pytest.approx((exact_z.mean() - b.clean) / b.gap, abs=1e-5)
    assert any(n.startswith("3.0") for n, _, _ in a.failures())  # the strongest head's large effect is missed
