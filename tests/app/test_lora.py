"""The LoRA page, opened from app.py: train a few steps of LoRA and full fine-tuning, then check the
weights, behaviour and forgetting views show values, and that an exported adapter loads back."""

from __future__ import annotations

import io
import zipfile

import pytest

from core.models import load_model
from core.models.loading import BUNDLED_DIR
from tests.app.helpers import open_page, texts

needs_bundled = pytest.mark.skipif(not (BUNDLED_DIR / "model.safetensors").is_file(),
                                reason="the bundled checkpoint is absent (python -m core.bundled.train)")

SMALL = {"lora_steps": "10", "lora_eval_every": "5", "lora_rank": "4", "lora_replay": "25"}


def _train(query=SMALL):
    at = open_page("app_pages/lora.py", query=query, timeout=180)
    assert "Press **Train**" in texts(at)
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@needs_bundled
def test_training_fills_every_view():
    at = _train()
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["LoRA r=4", "Full fine-tuning"]
    assert list(summary["steps"]) == [10, 10]
    result = at.session_state["lora_result"]  # the URL's settings reached the training loop
    assert [s for s, _ in result.runs["LoRA r=4"].history_] == [0, 5, 10]
    assert result.runs["Full fine-tuning"].config.lr == 2e-4 and result.runs["LoRA r=4"].config.replay == 0.25
    lora_params = int(summary["trainable parameters"][0])
    assert 0 < lora_params < int(summary["trainable parameters"][1])
    # the rank table: LoRA's update has rank <= 4, full fine-tuning's more
    ranks = next(d.value for d in at.dataframe if "max numerical rank" in d.value.columns)
    by_run = dict(zip(ranks["run"], ranks["max numerical rank"], strict=True))
    assert by_run["LoRA r=4"] <= 4 < by_run["Full fine-tuning"]
    page = texts(at)
    assert "Singular values of ΔW" in page and "Learning vs forgetting" in page
    assert "Training was stopped" not in page
    # moving a control redraws without retraining: the spectrum of another matrix
    at.segmented_control(key="lora_role").set_value("mlp_out").run()
    assert not at.exception
    assert "Singular values of ΔW" in texts(at)
    assert list(at.dataframe[0].value["steps"]) == [10, 10]


@needs_bundled
def test_exported_adapter_loads_back():
    at = _train({**SMALL, "lora_compare": "IA3"})
    runs = list(at.dataframe[0].value["run"])
    assert runs == ["LoRA r=4", "IA3"]
    result = at.session_state["lora_result"]
    blob = result.analysis["zips"]["LoRA r=4"]
    names = zipfile.ZipFile(io.BytesIO(blob)).namelist()
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(names)
    # load it from a folder through the page
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(io.BytesIO(blob)).extractall(tmp)
        at.text_input(key="lora_adapter_dir").set_value(tmp)
        at.button(key="lora_load").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Loaded a LORA adapter (r = 4)" in "\n".join(s.value for s in at.success)
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["LoRA r=4", "IA3", "Loaded adapter"]
    # same adapter, same predictions: its task accuracy after equals the trained LoRA's
    acc = dict(zip(summary["run"], summary["new task accuracy"], strict=True))
    assert acc["Loaded adapter"].split("→")[1] == acc["LoRA r=4"].split("→")[1]


@needs_bundled
def test_bad_adapter_folder_gets_a_message(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_ALLOW_LOCAL_ADAPTERS", raising=False)
    at = open_page("app_pages/lora.py", query=SMALL, timeout=120)
    assert "LAB_ALLOW_LOCAL_ADAPTERS=1" in at.text_input(key="lora_adapter_dir").help
    at.text_input(key="lora_adapter_dir").set_value("/no/such/folder")  # outside temp and the repository
    at.button(key="lora_load").click().run()
    assert not at.exception
    page = texts(at)
    assert "only under" in page and "LAB_ALLOW_LOCAL_ADAPTERS=1" in page and "Upload the adapter" in page
    at.text_input(key="lora_adapter_dir").set_value(str(tmp_path / "missing"))  # allowed, but not there
    at.button(key="lora_load").click().run()
    assert not at.exception
    assert "is not a folder on this machine" in texts(at)


def test_a_malformed_adapter_zip_gets_a_message(tiny_model_dir):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("adapter_config.json", b'{"peft_type": "LORA", "r": ')  # cut short: not JSON
        zf.writestr("adapter_model.safetensors", b"")
    at = open_page("app_pages/lora.py", query={**SMALL, "model": str(tiny_model_dir("gpt2"))}, timeout=120)
    at.file_uploader(key="lora_upload").upload("adapter.zip", buf.getvalue(), "application/zip")
    at.button(key="lora_load").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "adapter_config.json is not a readable JSON file" in texts(at)
    assert "Press **Train**" in texts(at)  # the page goes on


@needs_bundled
def test_a_stopped_run_is_kept_and_said_to_be_stopped():
    # What the page holds when Stop interrupted training after 3 of 50 steps.
    from core.interp.finetune.forgetting import SkillSuite
    from core.interp.finetune.methods import FinetuneConfig, FineTuner
    from core.interp.finetune.tasks import make_task
    from core.models import load_model
    from ui.lora.compute import LIVE_KEY, LoraResult
    from ui.lora.controls import Settings

    lm = load_model()
    task = make_task("changed_fact")
    suite = SkillSuite.build(lm, task, n_ioi=16, n_induction=4)
    cfg = FinetuneConfig(steps=50, eval_every=10, batch=4)
    tuner = FineTuner(cfg).fit(lm, task, suite, callback=lambda p: p.step < 3)
    live = LoraResult(Settings("changed_fact", cfg, (), 2e-4), lm.spec, task, suite, {"LoRA r=8": tuner})
    at = open_page("app_pages/lora.py", query=SMALL, state={LIVE_KEY: live}, timeout=120)
    assert "Training was stopped" in texts(at)
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["LoRA r=8"] and list(summary["steps"]) == [3]
    assert [s for s, _ in tuner.history_] == [0, 3]  # the skills were measured where it stopped
    assert LIVE_KEY not in at.session_state


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_a_small_hub_style_model_trains_too(tiny_model_dir, arch):
    # Another model family, with a vocabulary that lacks most of the world's words: no crash, values.
    folder = str(tiny_model_dir(arch))
    at = open_page("app_pages/lora.py", query={**SMALL, "model": folder, "lora_compare": ["Full FT", "IA3"]},
                   timeout=120)
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["LoRA r=4", "Full fine-tuning", "IA3"]
    assert list(summary["steps"]) == [10, 10, 10]
    assert "Singular values of ΔW" in texts(at)
    if arch == "llama":  # q, k and v are separate matrices there: pick one
        at.segmented_control(key="lora_module").set_value("self_attn.v_proj").run()
        assert not at.exception
        assert "`self_attn.v_proj` in layer 0" in texts(at)


def test_copies_over_the_memory_budget_are_skipped_with_a_reason(tiny_model_dir, monkeypatch):
    import ui.lora.compute
    from core.interp.finetune.methods import model_bytes

    folder = str(tiny_model_dir("gpt2"))
    size = model_bytes(load_model(folder))  # one copy; full fine-tuning needs ~4 while it trains
    monkeypatch.setattr(ui.lora.compute, "COPY_BUDGET_BYTES", 2.5 * size)
    at = open_page("app_pages/lora.py", query={**SMALL, "model": folder, "lora_compare": ["Full FT", "IA3"]},
                   timeout=120)
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at)
    assert "Full fine-tuning was not trained" in page and "more than this app allows" in page
    assert list(at.dataframe[0].value["run"]) == ["LoRA r=4", "IA3"]  # 2 copies: 2 x size < 2.5 x size
    monkeypatch.setattr(ui.lora.compute, "COPY_BUDGET_BYTES", 0.5 * size)  # not even one copy: LoRA too
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at)
    assert "LoRA r=4 was not trained" in page and "IA3 was not trained" in page
    assert list(at.dataframe[0].value["run"]) == ["LoRA r=4", "IA3"]  # the last result is kept


def test_at_most_three_copies_are_kept_and_the_page_says_so(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    at = open_page("app_pages/lora.py", query={**SMALL, "model": folder, "lora_compare": ["Full FT", "IA3"]},
                   timeout=120)
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.dataframe[0].value["run"]) == ["LoRA r=4", "Full fine-tuning", "IA3"]
    assert "this page keeps at most 3 of them" in texts(at)
    blob = at.session_state["lora_result"].analysis["zips"]["LoRA r=4"]
    at.file_uploader(key="lora_upload").upload("lora.zip", blob, "application/zip")
    at.button(key="lora_load").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.dataframe[0].value["run"]) == ["Full fine-tuning", "IA3", "Loaded adapter"]
    assert "let go of LoRA r=4" in "\n".join(s.value for s in at.success)
    assert list(at.session_state["lora_result"].runs) == ["Full fine-tuning", "IA3", "Loaded adapter"]


@needs_bundled
def test_earlier_runs_can_be_drawn_next_to_the_new_one():
    at = _train()  # replay 25%
    at.select_slider(key="lora_replay").set_value(0)
    at.button(key="lora_train").click().run()
    assert not at.exception
    at.toggle(key="lora_show_earlier").set_value(True).run()
    columns = {c for d in at.dataframe for c in d.value.columns}
    for replay in ("25%", "0%"):
        assert f"LoRA, r=4, lr 0.001, replay {replay}, 10 steps" in columns
        assert f"Full fine-tuning, lr 0.0002, replay {replay}, 10 steps" in columns
