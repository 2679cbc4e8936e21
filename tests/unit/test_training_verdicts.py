"""The training page's verdicts, on constructed logs that go each way: phase changes (induction,
grokking), position vs content (the trap), and the Fourier sparsity of an embedding."""

from __future__ import annotations

import math

import pytest
import torch

from core.interp.training import phase as P
from core.interp.training import trap as T
from core.interp.training.fourier import FOURIER_TOP_K, fourier_power
from core.interp.training.log import Checkpoint, TrainingLog


def _scores(induction: float, previous: float, n_layers: int = 2, n_heads: int = 2) -> dict:
    """Head tables where head (n_layers-1, 1) has the induction score and (0, 0) the previous-token one."""
    ind = [[0.01] * n_heads for _ in range(n_layers)]
    prev = [[0.02] * n_heads for _ in range(n_layers)]
    ind[-1][1] = induction
    prev[0][0] = previous
    return {"induction": ind, "previous_token": prev}


def _induction_log(series: list[tuple[int, float, float]], icl: list[float] | None = None) -> TrainingLog:
    icl = icl or [0.0] * len(series)
    return TrainingLog({}, [Checkpoint(step=s, train_loss=1.0, scores=_scores(i, p), first_half_loss=2.7,
                                       repeated_half_loss=2.7 + d)
                            for (s, i, p), d in zip(series, icl, strict=True)])


def test_a_sharp_jump_is_found_and_dated():
    log = _induction_log([(0, 0.03, 0.05), (100, 0.04, 0.3), (200, 0.05, 0.7), (300, 0.62, 0.8),
                          (400, 0.9, 0.8)],
                         icl=[0.0, 0.0, -0.1, -1.2, -1.8])
    v = P.induction_verdict(log)
    assert v.kind == "formed_sharply" and v.formed
    assert v.formed_step == 300 and v.previous_step == 200
    assert (v.jump.step_before, v.jump.step) == (200, 300)
    assert v.jump.rise == pytest.approx(0.57)
    assert (v.icl_before, v.icl_after) == (pytest.approx(-0.1), pytest.approx(-1.2))
    assert v.head == (1, 1, 0.9) and v.previous_head == (0, 0, 0.8)


def test_a_slow_climb_is_gradual_and_a_flat_line_is_not_formed():
    slow = P.induction_verdict(_induction_log([(s * 100, 0.1 * s + 0.05, 0.6) for s in range(8)]))
    assert slow.kind == "formed_gradually" and slow.formed_step == 500  # 0.55 is the first >= 0.5
    assert slow.jump.rise < P.SHARP_RISE
    flat = P.induction_verdict(_induction_log([(s * 100, 0.04, 0.1) for s in range(5)]))
    assert flat.kind == "not_formed" and not flat.formed and flat.formed_step is None
    assert flat.previous_step is None


def test_no_scores_means_no_induction_verdict():
    assert P.induction_verdict(TrainingLog({}, [Checkpoint(0, None, test_loss=2.0)])) is None


def _grok_log(rows: list[tuple[int, float, float]], fourier=None) -> TrainingLog:
    fourier = fourier or [None] * len(rows)
    return TrainingLog({}, [Checkpoint(step=s, train_loss=1.0, train_acc=a, test_acc=b, fourier_sparsity=f)
                            for (s, a, b), f in zip(rows, fourier, strict=True)])


def test_grokking_memorised_early_generalised_late_and_the_gap_closes():
    v = P.grok_verdict(_grok_log([(0, 0.0, 0.0), (100, 0.95, 0.05), (500, 1.0, 0.2), (900, 1.0, 0.95)],
                                 fourier=[0.2, 0.25, 0.4, 0.85]))
    assert v.kind == "grokked" and v.memorised_step == 100 and v.generalised_step == 900
    assert v.delay_factor == 9.0
    assert v.gap_closed and v.max_gap == pytest.approx(0.9) and v.final_gap == pytest.approx(0.05)
    assert (v.jump.step_before, v.jump.step) == (500, 900)
    assert (v.fourier_start, v.fourier_end) == (0.2, 0.85)


def test_the_other_grok_outcomes():
    together = P.grok_verdict(_grok_log([(0, 0, 0), (100, 0.5, 0.4), (200, 0.95, 0.92)]))
    assert together.kind == "generalised_with_it" and not together.gap_closed  # never opened
    memorised = P.grok_verdict(_grok_log([(0, 0, 0), (100, 0.99, 0.1), (200, 1.0, 0.3)]))
    assert memorised.kind == "memorised_only" and not memorised.gap_closed
    assert memorised.generalised_step is None
    nothing = P.grok_verdict(_grok_log([(0, 0, 0), (100, 0.2, 0.1)]))
    assert nothing.kind == "not_learned"
    assert P.grok_verdict(_induction_log([(0, 0.1, 0.1)])) is None


def test_steepest_rise_skips_missing_and_nan_values():
    jump = P.steepest_rise([0, 1, 2, 3], [0.1, None, float("nan"), 0.5])
    assert (jump.step_before, jump.step, jump.rise) == (0, 3, pytest.approx(0.4))
    assert P.steepest_rise([0], [0.3]) is None


def _copy_log(copy_loss: float, first: float, repeated: float) -> TrainingLog:
    start = Checkpoint(0, None, copy_loss=2.77, first_half_loss=2.77, repeated_half_loss=2.77)
    return TrainingLog({}, [start,
                            Checkpoint(500, 1.0, copy_loss=copy_loss, first_half_loss=first,
                                       repeated_half_loss=repeated)])


def test_copy_mechanism_position_content_or_not_solved():
    chance = math.log(16)
    by_position = T.copy_mechanism(_copy_log(0.2, 2.75, 2.7), 16)
    assert by_position.kind == "by_position" and by_position.step == 500
    assert by_position.chance == pytest.approx(chance) and by_position.icl == pytest.approx(-0.05)
    assert T.copy_mechanism(_copy_log(0.2, 2.75, 0.9), 16).kind == "by_content"
    assert T.copy_mechanism(_copy_log(0.6 * chance, 2.75, 0.9), 16).kind == "not_solved"
    # measured on the trap preset: a shortcut predicts a copy inside the random first half, wrongly, so
    # that half costs far more than chance; its repeat is still at chance: by position, not by content
    assert T.copy_mechanism(_copy_log(0.001, 6.22, 2.77), 16).kind == "by_position"
    assert T.copy_mechanism(_copy_log(0.001, 6.22, chance - T.USES_CONTEXT_NATS), 16).kind == "by_content"
    assert T.copy_mechanism(TrainingLog({}, [Checkpoint(0, None, test_loss=1.0)]), 16) is None


def test_fourier_sparsity_of_a_few_waves_and_of_noise():
    p, d = 53, 32
    a = torch.arange(p, dtype=torch.float32)[:, None]
    freqs = [3, 11, 17]
    waves = torch.cat([torch.cos(2 * math.pi * k * a / p) for k in freqs]
                      + [torch.sin(2 * math.pi * k * a / p) for k in freqs], dim=1)  # [p, 6]
    W = waves @ torch.randn(6, d, generator=torch.Generator().manual_seed(0))  # [p, d_model]
    clean = fourier_power(W)
    assert clean.sparsity == pytest.approx(1.0, abs=1e-5)
    assert sorted(clean.key_frequencies[:3]) == freqs
    noise = fourier_power(torch.randn(p, d, generator=torch.Generator().manual_seed(1)))
    assert noise.sparsity < 0.4  # five of 26 frequencies hold about a fifth of white noise's power
    assert noise.uniform_sparsity == pytest.approx(FOURIER_TOP_K / 26)


def _long_run(after: list[float]) -> TrainingLog:
    """1,500 steps logged every 50: flat at 0.05 until step 800, then `after` from step 850 on."""
    values = [0.05] * 17 + after
    values += [values[-1]] * (31 - len(values))
    return _induction_log([(50 * i, v, 0.6) for i, v in enumerate(values)])


def test_a_jump_spread_over_a_few_logged_intervals_is_still_sharp():
    # +0.18 per interval: no single interval rises SHARP_RISE, but 150 steps (a tenth of the run) carry 0.54
    sharp = P.induction_verdict(_long_run([0.23, 0.41, 0.59, 0.62, 0.66, 0.7]))
    assert sharp.kind == "formed_sharply" and (sharp.jump.step_before, sharp.jump.step) == (800, 950)
    assert sharp.jump.rise == pytest.approx(0.54)
    # the same start, then a long climb: the best tenth of the run holds under half of the whole rise
    slow = P.induction_verdict(_long_run([0.1 + 0.05 * i for i in range(14)]))
    assert slow.kind == "formed_gradually" and slow.jump.rise < P.SHARP_SHARE * (0.75 - 0.05)


def test_the_chart_marks_the_step_the_sentences_name():
    from ui.training.views import induction_notes, phase_marks

    # the steepest rise (800 -> 950) ends before the first step a head passes 0.5 (1,050)
    v = P.induction_verdict(_long_run([0.2, 0.3, 0.45, 0.49, 0.55, 0.7]))
    assert v.jump.step == 950 and v.formed_step == 1050
    assert phase_marks(v, None) == [(1050, "an induction score passes 0.5")]
    assert "first passed 0.5 at step 1,050" in " ".join(induction_notes(v))


def test_a_previous_token_head_that_sharpens_after_the_induction_head_is_said_so():
    from ui.training.views import induction_notes

    log = _induction_log([(0, 0.03, 0.05), (100, 0.04, 0.2), (200, 0.8, 0.3), (300, 0.9, 0.6)])
    v = P.induction_verdict(log)
    assert v.formed_step == 200 and v.previous_step == 300 and v.previous_at_formed == pytest.approx(0.3)
    words = " ".join(induction_notes(v))
    assert "passed 0.5 only at step 300, after the induction head" in words
    assert "the best previous-token score was 0.30" in words
    before = P.induction_verdict(_induction_log([(0, 0.03, 0.05), (100, 0.04, 0.6), (200, 0.8, 0.7)]))
    assert "at step 100 before the induction head" in " ".join(induction_notes(before))


def test_the_final_gap_is_the_mean_over_the_runs_last_tenth():
    # generalised, then one logged dip at the very end: the run's last tenth still closes the gap
    rows = [(0, 0.0, 0.0), (100, 0.95, 0.05), (500, 1.0, 0.3)]
    rows += [(s, 1.0, 0.96) for s in range(900, 1901, 50)]
    rows[-1] = (1900, 1.0, 0.85)
    v = P.grok_verdict(_grok_log(rows))
    end = [0.04, 0.04, 0.04, 0.15]  # steps 1,750 / 1,800 / 1,850 / 1,900: the last tenth (>= 1,710)
    assert v.final_gap == pytest.approx(sum(end) / len(end)) and v.gap_closed
    still_open = P.grok_verdict(_grok_log(rows[:-4] + [(s, 1.0, 0.8) for s in range(1750, 1901, 50)]))
    assert still_open.final_gap == pytest.approx(0.2) and not still_open.gap_closed
