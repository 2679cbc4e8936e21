"""The training loop on tiny runs: the loss falls, the logged head scores are the Attention page's,
a stopped run keeps its last state, every task and architecture trains and loads on every page's
interface, and a downloaded model is the trained model."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from core.interp.attention.head_scores import head_scores
from core.interp.training.architecture import ModelSettings
from core.interp.training.export import model_zip, save_folder
from core.interp.training.loop import train
from core.interp.training.measure import frozen_copy
from core.interp.training.metrics import SCORE_HALF_LEN, SCORE_SEED, SCORE_SEQS, attention_snapshot, icl_score
from core.interp.training.settings import TrainSettings, problems
from core.interp.training.tasks import TaskSettings
from core.models import load_model
from core.models.hook_names import act_name

TINY = TrainSettings(task=TaskSettings(vocab=8, n_ctx=24, min_segment=4, max_segment=8),
                     model=ModelSettings(n_layers=2, n_heads=2, d_model=16), lr=1e-2, batch=16, steps=40,
                     log_every=20)


@pytest.fixture(scope="module")
def tiny_run():
    return train(TINY, run_id="tiny")


def test_the_loss_falls_on_a_tiny_run(tiny_run):
    first, last = tiny_run.log.checkpoints[0], tiny_run.log.checkpoints[-1]
    assert [c.step for c in tiny_run.log.checkpoints] == [0, 20, 40]
    assert first.train_loss is None and last.train_loss is not None
    assert last.test_loss < first.test_loss - 0.2  # from about log(10) = 2.3 towards the unigram loss
    assert tiny_run.ending == "finished" and tiny_run.steps_done == 40


def test_logged_head_scores_are_the_attention_pages_scores_of_that_checkpoint(tiny_run, tmp_path):
    from ui.attention.compute import SCORE_HALF_LEN as PAGE_HALF
    from ui.attention.compute import SCORE_SEED as PAGE_SEED
    from ui.attention.compute import SCORE_SEQS as PAGE_SEQS

    assert (SCORE_SEQS, SCORE_HALF_LEN, SCORE_SEED) == (PAGE_SEQS, PAGE_HALF, PAGE_SEED)
    save_folder(tiny_run.model, tiny_run.task.tokenizer, tiny_run.log, tmp_path)
    lm = load_model(str(tmp_path))  # the checkpoint as any page loads it
    page = head_scores(lm, n=PAGE_SEQS, half_len=PAGE_HALF, seed=PAGE_SEED)
    logged = tiny_run.log.checkpoints[-1]
    for kind, table in logged.scores.items():
        assert torch.allclose(torch.tensor(table), page.scores[kind], atol=1e-6), kind
    icl = icl_score(lm)
    assert (logged.first_half_loss, logged.repeated_half_loss) == pytest.approx(
        (icl.first_half_loss, icl.repeated_half_loss), abs=1e-5)
    assert logged.snapshot == attention_snapshot(lm)


def test_the_icl_probe_is_the_mean_loss_of_each_half():
    lm = frozen_copy(train(TINY.with_changes(steps=1), run_id="x").model,
                     train(TINY.with_changes(steps=1), run_id="y").task, spec="t")
    from core.interp.training.metrics import repeated_tokens

    tokens = repeated_tokens(lm, SCORE_SEQS, SCORE_HALF_LEN, SCORE_SEED)
    half = (tokens.shape[1] - 1) // 2
    logits = lm(tokens)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                                             reduction="none").view(tokens.shape[0], -1)
    icl = icl_score(lm)
    assert icl.first_half_loss == pytest.approx(float(loss[:, 1:half].mean()), abs=1e-5)
    assert icl.repeated_half_loss == pytest.approx(float(loss[:, half + 1:].mean()), abs=1e-5)


def test_a_stopped_run_keeps_its_last_state():
    calls = {"n": 0}

    def stop_after_13():
        calls["n"] += 1
        return calls["n"] > 13

    run = train(TINY.with_changes(steps=100), run_id="stop", should_stop=stop_after_13)
    assert run.ending == "stopped" and run.steps_done == 13
    last = run.log.checkpoints[-1]
    assert last.step == 13 and last.train_loss is not None
    # the kept model is the one measured at step 13
    again = frozen_copy(run.model, run.task, spec="again")
    with torch.no_grad():
        test = run.task.test_batch()
        assert float(again.loss(test.tokens)) == pytest.approx(last.test_loss, abs=1e-6)


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    a = train(TINY.with_changes(steps=5, log_every=5), run_id="a").log.checkpoints[-1]
    b = train(TINY.with_changes(steps=5, log_every=5), run_id="b").log.checkpoints[-1]
    c = train(TINY.with_changes(steps=5, log_every=5, seed=1), run_id="c").log.checkpoints[-1]
    assert a.test_loss == b.test_loss and a.scores == b.scores
    assert a.test_loss != c.test_loss


@pytest.mark.parametrize("task, model", [
    (TaskSettings(kind="fixed_offset", vocab=8, n_ctx=24, period=5),
     ModelSettings(n_layers=1, n_heads=2, d_model=16)),
    (TaskSettings(kind="modular_addition", p=7, train_fraction=0.5),
     ModelSettings(n_layers=1, n_heads=2, d_model=16, mlp=True, tied=False)),
    (TaskSettings(kind="grammar", n_ctx=32, families=("arithmetic",)),
     ModelSettings(n_layers=1, n_heads=2, d_model=16)),
    (TaskSettings(kind="custom", n_ctx=16, text="ab ab ab\ncd cd", level="char"),
     ModelSettings(n_layers=2, n_heads=2, d_model=16, positions="rotary")),
    (TaskSettings(kind="custom", n_ctx=16, text="the cat sat .\nthe dog sat !", level="word"),
     ModelSettings(n_layers=3, n_heads=4, d_model=16, positions="none", mlp=True)),
])
def test_every_task_and_architecture_trains_and_works_as_a_page_model(task, model, tmp_path):
    s = TrainSettings(task=task, model=model, batch=8, steps=6, log_every=3, lr=1e-2)
    assert problems(s) == []
    run = train(s, run_id="t")
    assert run.steps_done == 6 and [c.step for c in run.log.checkpoints] == [0, 3, 6]
    last = run.log.checkpoints[-1]
    if task.kind == "modular_addition":
        assert 0 <= last.test_acc <= 1 and 0 <= last.train_acc <= 1 and 0 < last.fourier_sparsity <= 1
        assert last.scores is None
    else:
        assert len(last.scores["induction"]) == model.n_layers and len(last.snapshot[0]) == model.n_heads
    save_folder(run.model, run.task.tokenizer, run.log, tmp_path)
    lm = load_model(str(tmp_path))
    assert lm.cfg.n_layers == model.n_layers
    assert lm.cfg.arch == ("gpt_neox" if model.positions == "rotary" else "gpt2")
    tokens = run.task.test_batch().tokens[:2]
    with torch.no_grad():
        assert torch.allclose(lm(tokens), run.model(input_ids=tokens).logits, atol=1e-5)
    _, cache = lm.run_with_cache(tokens, names=[act_name("pattern", 0), act_name("resid_post", 0)])
    assert cache[act_name("pattern", 0)].shape[1] == model.n_heads
    if not model.mlp:  # switched-off MLPs write exactly nothing, before and after training
        _, mlp = lm.run_with_cache(tokens, names=[act_name("mlp_out", 0)])
        assert mlp[act_name("mlp_out", 0)].abs().max() == 0
    if model.positions == "none":
        assert lm.W_pos.abs().max() == 0


def test_the_download_is_a_loadable_copy_of_the_model(tiny_run, tmp_path):
    data = model_zip(tiny_run.model, tiny_run.task.tokenizer, tiny_run.log)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert {"config.json", "model.safetensors", "tokenizer.json", "training_log.json"} <= names
        zf.extractall(tmp_path)
    lm = load_model(str(tmp_path))
    tokens = tiny_run.task.test_batch().tokens[:4]
    with torch.no_grad():
        direct = tiny_run.model(input_ids=tokens, attention_mask=torch.ones_like(tokens)).logits
        assert torch.equal(lm(tokens), direct)


def test_a_diverging_run_ends_and_says_where(monkeypatch):
    import core.interp.training.loop as L

    real = L.next_token_loss
    calls = {"n": 0}

    def explode_at_step_4(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(L, "next_token_loss", explode_at_step_4)
    run = train(TINY.with_changes(steps=10, log_every=2), run_id="nan")
    assert run.ending == "diverged" and run.diverged_at == 4 and run.steps_done == 3
    assert [c.step for c in run.log.checkpoints] == [0, 2]
