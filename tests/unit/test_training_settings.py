"""Settings are checked before anything is built: every bad value gets a sentence that says what to
change, and every preset passes."""

from __future__ import annotations

import math

import pytest

from core.interp.training import settings as S
from core.interp.training.architecture import ModelSettings
from core.interp.training.presets import PRESETS
from core.interp.training.settings import TrainSettings, problems
from core.interp.training.tasks import MAX_CUSTOM_CHARS, MAX_CUSTOM_VOCAB, TaskSettings, build_task

BASE = TrainSettings(steps=50)


@pytest.mark.parametrize("key", list(PRESETS))
def test_every_preset_is_valid(key):
    assert problems(PRESETS[key].settings, memory_budget_bytes=1.5e9) == []


def test_d_model_that_does_not_split_into_the_heads_says_so_with_examples():
    [message] = problems(BASE.with_changes(model=ModelSettings(d_model=64, n_heads=5)))
    assert "d_model 64 does not split into 5 heads" in message and "60 or 65" in message


def test_rotary_needs_even_head_sizes():
    [message] = problems(BASE.with_changes(model=ModelSettings(d_model=24, n_heads=8, positions="rotary")))
    assert "even" in message and "= 3" in message


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -1e-3, 5.0])
def test_bad_learning_rates(lr):
    [message] = problems(BASE.with_changes(lr=lr))
    assert message.startswith("The learning rate must be a number above 0")


@pytest.mark.parametrize("wd", [float("nan"), -0.1, 11.0])
def test_bad_weight_decay(wd):
    [message] = problems(BASE.with_changes(weight_decay=wd))
    assert message.startswith("Weight decay must be")


def test_empty_custom_task_and_huge_ones():
    empty = BASE.with_changes(task=TaskSettings(kind="custom", text="  \n\n "))
    assert problems(empty) == ["Type some examples first, one per line (for example a few sentences, or "
                               "strings like 'abcabc')."]
    huge = BASE.with_changes(task=TaskSettings(kind="custom", text="ab\n" * (MAX_CUSTOM_CHARS // 2)))
    [message] = problems(huge)
    assert f"at most {MAX_CUSTOM_CHARS:,}" in message
    words = " ".join(f"w{i}" for i in range(MAX_CUSTOM_VOCAB + 5))
    [message] = problems(BASE.with_changes(task=TaskSettings(kind="custom", text=words)))
    assert f"{MAX_CUSTOM_VOCAB + 5:,} distinct words" in message
    [message] = problems(BASE.with_changes(task=TaskSettings(kind="custom", text="x")))
    assert "single token" in message


def test_unicode_custom_examples_build_a_vocabulary():
    task = build_task(TaskSettings(kind="custom", text="día 🙂 día\nnaïve café 🙂", level="char"))
    pieces = set(task.tokenizer.get_vocab())
    assert {"í", "🙂", "ï", "é"} <= pieces
    assert task.tokenizer.decode(task.test_batch().tokens[0, 1:5].tolist()) in ("día ", "naïv")


def test_a_run_over_the_time_budget_is_refused_with_its_estimate():
    big = BASE.with_changes(steps=50_000, batch=512, log_every=500,
                            model=ModelSettings(n_layers=3, d_model=256, mlp=True))
    [message] = problems(big)
    assert "minutes on one thread" in message and f"at most {S.TIME_BUDGET_S / 60:.0f}" in message


def test_a_run_over_the_memory_budget_is_refused():
    wide = BASE.with_changes(batch=1024, task=TaskSettings(n_ctx=128, max_segment=20))
    [message] = problems(wide, memory_budget_bytes=50e6)
    assert "MB this session may use" in message


def test_task_shapes_that_cannot_fit():
    [message] = problems(BASE.with_changes(task=TaskSettings(n_ctx=32, max_segment=20)))
    assert "need 41 tokens" in message
    [message] = problems(BASE.with_changes(task=TaskSettings(kind="fixed_offset", n_ctx=48, period=23)))
    assert "hide whether the model copies by position" in message
    [message] = problems(BASE.with_changes(task=TaskSettings(kind="modular_addition", p=200)))
    assert "modulus p must be 3 to" in message
    [message] = problems(BASE.with_changes(task=TaskSettings(kind="grammar", families=())))
    assert "Pick at least one" in message


def test_several_problems_are_all_listed():
    bad = BASE.with_changes(lr=float("nan"), weight_decay=-1.0, model=ModelSettings(d_model=30, n_heads=4))
    assert len(problems(bad)) == 3


def test_parameter_count_matches_the_built_model():
    from core.interp.training.architecture import build_model
    from core.models.params import count_params

    for m in (ModelSettings(), ModelSettings(mlp=True, n_layers=3), ModelSettings(positions="rotary"),
              ModelSettings(tied=False, positions="none")):
        assert S.param_count(m, 18, 48) == count_params(build_model(m, 18, 48, seed=0)), m
    assert math.isfinite(S.estimate(BASE, 18, 48).seconds)


def test_a_run_measured_too_often_is_refused_with_the_interval_to_use():
    s = PRESETS["induction"].settings.with_changes(steps=2_000, log_every=1)
    [message] = [p for p in problems(s) if "measured" in p]
    assert "measured 2,000 times" in message and f"at most {S.MAX_LOGGED_STEPS}" in message
    assert "Measure every 4 steps or more" in message
    assert not [p for p in problems(s.with_changes(log_every=4)) if "measured" in p]
