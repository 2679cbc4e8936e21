"""Behaviours as clean / corrupted pairs: same lengths, right answers, clear messages for bad pairs."""

from __future__ import annotations

import pytest

from core.interp.patching.engine import PatchEngine
from core.interp.patching.metric import Baseline
from core.interp.patching.tasks import PairError, build_task, custom_task
from core.models import load_model


@pytest.fixture(scope="module")
def bundled():
    return load_model()


@pytest.mark.parametrize("behaviour", ["ioi", "induction", "facts", "pronouns"])
def test_every_bundled_behaviour_is_a_usable_pair_the_model_gets_right(bundled, behaviour):
    task = build_task(bundled, behaviour)
    assert task.n_batch == 8 and task.clean.shape == task.corrupt.shape
    assert len(task.labels) == task.n_pos and task.differing_positions()
    b = PatchEngine(bundled, task).baseline
    assert b.clean > 2 and b.corrupt < -2, (b.clean, b.corrupt)  # right on clean, flipped on corrupted
    assert b.usable


def test_ioi_swaps_the_names_and_labels_the_roles(bundled):
    task = build_task(bundled, "ioi")
    assert set(task.roles) == {"IO", "S1", "S2", "end"}
    assert task.differing_positions() == [task.roles["S2"]]
    io, s2 = task.clean[0, task.roles["IO"]], task.corrupt[0, task.roles["S2"]]
    assert io == s2  # the corrupted prompt names the IO a second time
    assert bundled.single_token_id(task.right) == int(task.answers[0, 0])


def test_induction_moves_the_earlier_copy_of_the_last_token(bundled):
    task = build_task(bundled, "induction")
    a = task.clean[:, -1]
    assert (task.clean[:, task.roles["A (earlier)"]] == a).all()
    assert (task.corrupt[:, task.roles["A moved here"]] == a).all()
    assert (task.answers[:, 0] == task.clean[:, task.roles["B"]]).all()
    assert (task.answers[:, 1] == task.clean[:, task.roles["D"]]).all()
    moved = {task.roles["A moved here"], task.roles["A (earlier)"]}
    assert sorted(set(task.differing_positions())) == sorted(moved)


@pytest.mark.parametrize(("clean", "corrupt", "right", "wrong", "words"), [
    ("", "John went home", " Mary", " John", "clean prompt is empty"),
    ("Mary went home", "   ", " Mary", " John", "corrupted prompt is empty"),
    ("When Mary went to the store", "When Mary and John went to the store", " Mary", " John",
     "different token lengths"),
    ("When Mary went home", "When John went home", " Mary", " Mary", "are the same token"),
    ("When Mary went home", "When John went home", " Mary and", " John", "not a single token"),
    ("When Mary went home", "When Mary went home", " Mary", " John", "the same"),
])
def test_a_bad_pair_gets_a_clear_message(bundled, clean, corrupt, right, wrong, words):
    with pytest.raises(PairError, match=words):
        custom_task(bundled, clean, corrupt, right, wrong)


def test_a_good_custom_pair_marks_the_changed_token(bundled):
    task = custom_task(bundled, "When Mary and John went to the store, John gave a drink to",
                       "When Mary and John went to the store, Mary gave a drink to", " Mary", " John")
    assert task.n_batch == 1 and task.roles["changed"] == 10 and "(changed)" in task.labels[10]


def test_word_behaviours_on_a_model_that_lacks_the_words_say_so(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    for behaviour in ("ioi", "facts", "pronouns"):
        with pytest.raises(PairError, match="does not know these words|Pick induction"):
            build_task(lm, behaviour)
    assert build_task(lm, "induction").n_batch == 8  # random token ids work on any vocabulary


def test_normalisation_maps_clean_to_one_and_corrupt_to_zero():
    b = Baseline(4.0, -2.0, None, None)
    assert b.normalise(4.0) == 1.0 and b.normalise(-2.0) == 0.0 and b.normalise(1.0) == 0.5
    assert b.usable and not Baseline(1.0, 0.9, None, None).usable
