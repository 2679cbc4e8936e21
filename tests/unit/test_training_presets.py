"""Every preset that claims a phenomenon shows it, trained from scratch on one thread.

Each test asserts the claim from the run's own log and verdicts (never a wall time); the time each
took is a figure in benchmarks/bench_training.py. The induction preset is also checked on fresh
sequences the run never measured (another seed of repeated random tokens)."""

from __future__ import annotations

import pytest
import torch

from core.interp.attention.head_scores import head_scores
from core.interp.training.loop import train
from core.interp.training.measure import frozen_copy
from core.interp.training.metrics import icl_score
from core.interp.training.phase import INDUCTION_FORMED, grok_verdict, induction_verdict
from core.interp.training.presets import GROKKING, INDUCTION, ONE_LAYER, TRAP
from core.interp.training.trap import copy_mechanism

pytestmark = pytest.mark.slow
FRESH_SEED = 4242  # repeated random tokens the run never measured


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_induction_preset_forms_an_induction_head_on_fresh_sequences():
    run = train(INDUCTION.settings, run_id="preset-induction")
    assert run.ending == "finished"
    verdict = induction_verdict(run.log)
    assert verdict.formed and verdict.kind == "formed_sharply", verdict
    lm = frozen_copy(run.model, run.task, spec="preset-induction")
    fresh = head_scores(lm, n=64, half_len=20, seed=FRESH_SEED)
    layer, head, score = fresh.best("induction")
    assert score >= INDUCTION_FORMED and layer >= 1  # an induction head reads an earlier layer's output
    icl = icl_score(lm, n=64, half_len=20, seed=FRESH_SEED)
    assert icl.repeated_half_loss < icl.first_half_loss - 0.5
    assert verdict.previous_step is not None and verdict.previous_step <= verdict.formed_step


def test_one_layer_on_the_same_data_forms_no_induction_head():
    run = train(ONE_LAYER.settings, run_id="preset-one-layer")
    verdict = induction_verdict(run.log)
    assert not verdict.formed, verdict


def test_the_trap_is_solved_by_position_not_by_content():
    run = train(TRAP.settings, run_id="preset-trap")
    mechanism = copy_mechanism(run.log, TRAP.settings.task.vocab)
    assert mechanism.kind == "by_position", mechanism
    assert not induction_verdict(run.log).formed


def test_the_grokking_preset_memorises_first_and_closes_the_gap():
    run = train(GROKKING.settings, run_id="preset-grokking")
    verdict = grok_verdict(run.log)
    assert verdict.kind == "grokked", verdict
    assert verdict.gap_closed, verdict
    assert verdict.fourier_end > verdict.fourier_start
