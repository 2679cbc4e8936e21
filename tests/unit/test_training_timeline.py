"""The bundled model's replayed timeline (assets/bundled/timeline.json): small, complete, true about the
committed checkpoint it is set beside (same layers for the same heads at the end), and reproduced by a
retrain over its first logged steps.

Tolerance of the retrain check: the recipe multiplies matrices in bfloat16 (autocast), and which
kernel the CPU uses (AMX, AVX-512 BF16 or a float32 fallback) changes the rounding of every product.
On the machine that wrote the timeline the retrain is bit-identical (checked when it was written);
elsewhere the first 200 steps drift by far less than these tolerances: RETRAIN_LOSS_ATOL nats on
losses, RETRAIN_SCORE_ATOL on head scores (attention shares), and 2 percentage points on a snapshot
cell (they are stored in whole percent, so rounding alone can move one by 1)."""

from __future__ import annotations

import pytest
import torch

from core.bundled.timeline import LOG_EVERY, TIMELINE_PATH, replay
from core.bundled.train import TrainConfig
from core.interp.attention.head_scores import head_scores
from core.interp.training.log import TrainingLog
from core.interp.training.metrics import LOGGED_KINDS, SCORE_HALF_LEN, SCORE_SEED, SCORE_SEQS, icl_score
from core.models import load_model
from core.models.loading import BUNDLED_DIR
from ui.training.views import replay_end_words

RETRAIN_LOSS_ATOL = 0.02
RETRAIN_SCORE_ATOL = 0.02
MAX_BYTES = 1_000_000

pytestmark = pytest.mark.skipif(not TIMELINE_PATH.is_file(), reason="no timeline: python -m "
                                                                    "core.bundled.timeline")


@pytest.fixture(scope="module")
def committed() -> TrainingLog:
    return TrainingLog.load(TIMELINE_PATH)


def test_the_timeline_is_small_and_covers_every_hundredth_step(committed):
    assert TIMELINE_PATH.stat().st_size < MAX_BYTES
    steps = TrainConfig().steps
    assert committed.steps == list(range(0, steps + 1, LOG_EVERY))
    assert committed.meta["recipe"]["seed"] == TrainConfig().seed
    n_layers, n_heads = committed.meta["n_layers"], committed.meta["n_heads"]
    n_tokens = len(committed.meta["snapshot_tokens"])
    for c in committed.checkpoints:
        assert set(c.scores) == set(LOGGED_KINDS)
        assert [len(row) for row in c.scores["induction"]] == [n_heads] * n_layers
        assert len(c.snapshot) == n_layers and len(c.snapshot[0][0]) == n_tokens
        assert c.test_loss is not None and c.icl is not None


def test_the_committed_checkpoint_is_recorded_beside_the_last_step_and_tells_the_same_story(committed):
    """The replay's weights need not end on the committed ones (bfloat16 rounding differs between
    CPUs); what it records about the committed model must be true, and its last step must show the
    same circuit: previous-token and induction heads in the same layers."""
    lm = load_model()
    end = committed.meta["committed_end"]
    scores = head_scores(lm, n=SCORE_SEQS, half_len=SCORE_HALF_LEN, seed=SCORE_SEED)
    for kind in LOGGED_KINDS:
        assert torch.allclose(torch.tensor(end["scores"][kind]), scores.scores[kind], atol=1e-4), kind
    assert end["repeated_half_loss"] == pytest.approx(icl_score(lm).repeated_half_loss, abs=1e-4)
    last = committed.checkpoints[-1]
    for kind in ("previous_token", "induction"):
        ours = {layer for layer, row in enumerate(last.scores[kind]) if max(row) >= 0.5}
        theirs = {layer for layer, row in enumerate(end["scores"][kind]) if max(row) >= 0.5}
        assert ours == theirs and ours, kind
    words = replay_end_words(committed.meta, last.scores)
    assert "the same layers, so the same circuit" in words
    assert (BUNDLED_DIR / "model.safetensors").is_file()


def test_the_replay_words_say_when_the_circuit_differs():
    meta = {"max_abs_diff_to_committed_checkpoint": 0.5,
            "committed_end": {"scores": {"previous_token": [[0.9, 0.1], [0.1, 0.1]],
                                         "induction": [[0.0, 0.0], [0.8, 0.1]]}}}
    same = {"previous_token": [[0.1, 0.7], [0.1, 0.1]], "induction": [[0.0, 0.0], [0.1, 0.9]]}
    moved = {"previous_token": [[0.1, 0.1], [0.7, 0.1]], "induction": [[0.0, 0.0], [0.1, 0.9]]}
    assert "previous-token heads (score 0.5 or more) 0.1 here, 0.0 in the committed model" in \
        replay_end_words(meta, same)
    assert "the same layers" in replay_end_words(meta, same)
    assert "different layers" in replay_end_words(meta, moved)
    assert replay_end_words({**meta, "max_abs_diff_to_committed_checkpoint": 0.0}, same).startswith(
        "The retrain ended on exactly the committed weights")


@pytest.mark.slow
def test_a_retrain_reproduces_the_first_logged_steps(committed):
    log, _ = replay(stop_after=2 * LOG_EVERY)
    assert log.steps == committed.steps[:3] == [0, LOG_EVERY, 2 * LOG_EVERY]
    for ours, theirs in zip(log.checkpoints, committed.checkpoints, strict=False):
        for field in ("train_loss", "test_loss", "first_half_loss", "repeated_half_loss"):
            a, b = getattr(ours, field), getattr(theirs, field)
            same = (a is None and b is None) or a == pytest.approx(b, abs=RETRAIN_LOSS_ATOL)
            assert same, (ours.step, field, a, b)
        for kind in LOGGED_KINDS:
            assert torch.allclose(torch.tensor(ours.scores[kind]), torch.tensor(theirs.scores[kind]),
                                  atol=RETRAIN_SCORE_ATOL), (ours.step, kind)
        diff = (torch.tensor(ours.snapshot) - torch.tensor(theirs.snapshot)).abs().max()
        assert diff <= 2, (ours.step, diff)
