"""The training page, opened from app.py: it opens on the induction preset, a short run completes
and fills the charts, bad settings get clear messages (and no Start), a prediction is locked and
graded on the run, the trained model is registered for the session and downloads as a loadable zip,
a link restores the settings, and the bundled model's training replays from its timeline."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import torch

from core.bundled.timeline import TIMELINE_PATH
from core.interp.training.export import model_zip
from core.interp.training.presets import PRESETS
from core.models import HookedLM, load_model
from tests.app.helpers import open_page, texts
from ui.common.session_models import SESSION_MODELS_KEY as TRAINED_MODELS_KEY

PAGE = "app_pages/training.py"
SHORT = {"train_steps": "30", "train_log_every": "10", "train_batch": "16", "train_d_model": "16",
         "train_heads": "2"}


@pytest.fixture(autouse=True)
def _synchronous(monkeypatch):
    monkeypatch.setenv("LAB_TRAINING_SYNC", "1")  # a started run trains within the click's script run


def _charts(at) -> int:
    return len(at.get("vega_lite_chart"))


def _start(at):
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_page_opens_on_the_induction_preset_with_nothing_trained():
    at = open_page(PAGE)
    assert at.selectbox(key="train_preset").value == "induction"
    assert at.selectbox(key="train_task").value == "induction"
    assert at.slider(key="train_layers").value == 2 and at.text_input(key="train_lr").value == "0.005"
    assert not at.button(key="train_start").disabled
    assert "an induction head forms in a jump" in texts(at)
    assert "training_job" not in at.session_state
    assert not any(b.key == "train_use" for b in at.button)


def test_a_short_run_completes_and_draws_its_charts():
    at = _start(open_page(PAGE, query=SHORT))
    job = at.session_state["training_job"]
    assert job.state == "finished" and job.steps_done == 30
    assert [c.step for c in job.checkpoints] == [0, 10, 20, 30]
    before = _charts(open_page(PAGE, query=SHORT))  # the replay tab's charts, if any
    assert _charts(at) - before == 5  # loss, ICL, best scores, every head's scores, the snapshots
    shown = texts(at)
    [bar] = at.get("progress")
    assert bar.proto.text == "Finished: step 30 of 30 (" + bar.proto.text.split("(")[1]
    assert "What to notice" in shown and "No induction head formed in 30 steps" in shown
    assert any(m.label == "Step" and m.value == "30" for m in at.metric)
    # the timeline slider scrubs every chart to a logged step
    at.select_slider(key="train_live_step").set_value(10).run()
    assert not at.exception
    assert any(m.label == "Step" and m.value == "10" for m in at.metric)
    assert "Every head at step 10" in texts(at)


def test_use_this_model_registers_it_for_the_session_and_the_download_loads(tmp_path):
    at = _start(open_page(PAGE, query=SHORT))
    at.button(key="train_use").click().run()
    assert not at.exception
    job = at.session_state["training_job"]
    spec = f"trained:{job.id}"
    models = at.session_state[TRAINED_MODELS_KEY]
    assert list(models) == [spec] and isinstance(models[spec], HookedLM) and models[spec].spec == spec
    assert f"Available for this session as **{spec}**" in texts(at)
    assert any(b.proto.label.startswith("Download the model (.zip") for b in at.get("download_button"))
    data = model_zip(job.result.model, job.result.task.tokenizer, job.result.log)  # what the button builds
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    lm = load_model(str(tmp_path))
    assert lm.cfg.n_layers == 2 and lm.cfg.d_model == 16 and lm.cfg.n_heads == 2
    # the induction preset has no LayerNorm inside its blocks: the loaded folder must be the same model
    tokens = models[spec].to_tokens("a b c a b c")
    assert torch.allclose(lm(tokens), models[spec](tokens), atol=1e-5)


@pytest.mark.parametrize("query, message", [
    ({"train_d_model": "48", "train_heads": "5"}, "d_model 48 does not split into 5 heads"),
    ({"train_lr": "nan"}, "The learning rate must be a number above 0"),
    ({"train_lr": "fast"}, "The learning rate 'fast' is not a number"),
    ({"train_wd": "-1"}, "Weight decay must be a number from 0"),
    ({"train_steps": "50000", "train_batch": "1024", "train_d_model": "256", "train_n_ctx": "128",
      "train_log_every": "500"},
     "minutes on one thread"),
])
def test_bad_settings_get_a_clear_message_and_no_start(query, message):
    at = open_page(PAGE, query=query)
    warnings = " ".join(w.value for w in at.warning)
    assert message in warnings, warnings
    assert at.button(key="train_start").disabled


def test_an_empty_custom_task_says_what_to_type_and_keeps_the_text_box():
    at = open_page(PAGE, query={"train_preset": PRESETS["custom"].label})  # a URL holds the label
    assert at.selectbox(key="train_task").value == "custom"
    at.text_area(key="train_text").input("   \n  ").run()
    assert "Type some examples first" in " ".join(w.value for w in at.warning)
    assert at.button(key="train_start").disabled
    at.text_area(key="train_text").input("abab abab\ncdcd cdcd").run()
    assert not any("examples" in w.value for w in at.warning) and not at.button(key="train_start").disabled


def test_a_preset_sets_every_knob_and_a_link_restores_them():
    at = open_page(PAGE)
    at.selectbox(key="train_preset").set_value("grokking").run()
    grok = PRESETS["grokking"].settings
    assert at.selectbox(key="train_task").value == "modular_addition"
    assert at.number_input(key="train_p").value == grok.task.p
    assert at.text_input(key="train_wd").value == f"{grok.weight_decay:g}"
    assert at.toggle(key="train_mlp").value is True and at.slider(key="train_layers").value == 1
    linked = open_page(PAGE, query={"train_preset": PRESETS["trap"].label, "train_seed": "7"})
    assert linked.selectbox(key="train_task").value == "fixed_offset"
    assert linked.number_input(key="train_period").value == PRESETS["trap"].settings.task.period
    assert linked.number_input(key="train_seed").value == 7


def test_predict_first_locks_a_prediction_and_grades_it_on_the_run():
    at = open_page(PAGE, query=SHORT, predict=True)
    assert "Will this run form an induction head" in texts(at)
    assert not any(b.key == "train_start" for b in at.button)  # no run before a prediction
    at.radio(key="train_predict_answer").set_value("No")
    at.text_input(key="train_predict_why").input("30 steps are far too few")
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception
    _start(at)
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** No (70% sure)" in shown
    assert re.search(r"\*\*Measured:\*\* no: the best induction score after 30 steps is 0\.\d\d", shown)
    assert ":material/check: right" in shown


@pytest.mark.skipif(not TIMELINE_PATH.is_file(), reason="no bundled timeline (python -m "
                                                        "core.bundled.timeline)")
def test_the_bundled_replay_draws_its_timeline_and_what_to_notice():
    at = open_page(PAGE)
    shown = texts(at)
    assert "It was retrained with the same recipe and seed" in shown
    assert "An induction head formed: a head's induction score first passed 0.5 at step 2,000" in shown
    assert "the same layers, so the same circuit" in shown  # set beside the committed model
    at.select_slider(key="train_bundled_step").set_value(1000).run()
    assert not at.exception
    assert "Every head at step 1,000" in texts(at)
