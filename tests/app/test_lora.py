"""The LoRA page, opened from app.py: train a few steps of LoRA and full fine-tuning, then check the
weights, behaviour and forgetting views show values, that an exported adapter loads back, that the
prediction step comes first, and that no upload or folder name ends in an exception."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from core.models import load_model
from core.models.loading import BUNDLED_DIR, ROOTS_ENV
from tests.app.helpers import open_page, texts

needs_bundled = pytest.mark.skipif(not (BUNDLED_DIR / "model.safetensors").is_file(),
                                reason="the bundled checkpoint is absent (python -m core.bundled.train)")

SMALL = {"lora_steps": "10", "lora_eval_every": "5", "lora_rank": "4", "lora_replay": "25"}


@pytest.fixture(autouse=True)
def _links_may_name_the_tiny_models(monkeypatch, tiny_model_dir):
    monkeypatch.setenv(ROOTS_ENV, str(tiny_model_dir("gpt2").parent))  # the tiny models' common folder


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
    # "what to notice" speaks of the forgetting the Forgetting tab shows, in numbers from this run
    report = result.report()
    lora = report.run("LoRA r=4")
    facts = lora.drop_of("fact_accuracy")
    assert f"{facts.before:.2f} → {facts.after:.2f}" in page and "Facts accuracy" in page
    assert report.comparison is not None and "Biderman et al. (2024) found" in page
    assert "attention's query, key and value matrix of layer 0 (`attn.c_attn` in the checkpoint)" in page
    assert "matmul measured" in page and "Training ran its matrix products in" in page  # the dtype, and why
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
    assert "Loaded a LORA adapter (r = 4) with" in "\n".join(s.value for s in at.success)
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["LoRA r=4", "IA3", "Loaded adapter"]
    # same adapter, same predictions: its task accuracy after equals the trained LoRA's
    acc = dict(zip(summary["run"], summary["new task accuracy"], strict=True))
    assert acc["Loaded adapter"].split("→")[1] == acc["LoRA r=4"].split("→")[1]


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def test_bad_adapter_folders_get_one_neutral_message(monkeypatch, tmp_path, tiny_model_dir):
    monkeypatch.delenv("LAB_ALLOW_LOCAL_ADAPTERS", raising=False)
    at = open_page("app_pages/lora.py", query={**SMALL, "model": str(tiny_model_dir("gpt2"))}, timeout=120)
    assert "LAB_ALLOW_LOCAL_ADAPTERS=1" in at.text_input(key="lora_adapter_dir").help
    messages = []
    for folder in ("/no/such/folder", "/etc", str(tmp_path / "missing"), str(tmp_path)):  # out, or no adapter
        at.text_input(key="lora_adapter_dir").set_value(folder)
        at.button(key="lora_load").click().run()
        assert not at.exception, [e.value for e in at.exception]
        messages.append(_warnings(at)[-1])
    assert len(set(messages)) == 1  # nothing tells which of these paths exist
    assert "only under" in messages[0] and "LAB_ALLOW_LOCAL_ADAPTERS=1" in messages[0]
    for folder, message in (("a\x00b", "NUL character"), ("x" * 5000, "too long (5,000 characters)")):
        at.text_input(key="lora_adapter_dir").set_value(folder)
        at.button(key="lora_load").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert message in _warnings(at)[-1]
        assert at.text_input(key="lora_adapter_dir").value == folder  # nothing typed is lost


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
    from core.interp.finetune.config import FinetuneConfig
    from core.interp.finetune.forgetting import SkillSuite
    from core.interp.finetune.tasks import make_task
    from core.interp.finetune.training import FineTuner
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
    assert at.session_state["lora_result"].spec == load_model(folder).spec != "bundled"  # that model, trained
    assert "Singular values of ΔW" in texts(at)
    if arch == "llama":  # q, k and v are separate matrices there: pick one
        at.segmented_control(key="lora_module").set_value("self_attn.v_proj").run()
        assert not at.exception
        assert "value matrix W_V of layer 0 (`self_attn.v_proj` in the checkpoint)" in texts(at)


def test_copies_over_the_memory_budget_are_skipped_with_a_reason(tiny_model_dir):
    from core.interp.finetune.memory import model_bytes
    from core.models.budget import session_budget_bytes

    folder = str(tiny_model_dir("gpt2"))
    size = model_bytes(load_model(folder))  # one copy; full fine-tuning needs ~4 while it trains
    elsewhere = {"other_page": session_budget_bytes() - 2.5 * size}  # what other pages hold in the session
    at = open_page("app_pages/lora.py", query={**SMALL, "model": folder, "lora_compare": ["Full FT", "IA3"]},
                   state={"memory_ledger": elsewhere}, timeout=120)
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at)
    assert "Full fine-tuning was not trained" in page and "over this server's budget" in page
    assert "next to the" in page and "Try LoRA or IA3" in page  # says what the session holds, what to lower
    assert list(at.dataframe[0].value["run"]) == ["LoRA r=4", "IA3"]  # 2 copies: 2 x size < 2.5 x size
    assert at.session_state["memory_ledger"]["lora_copies"] == 2 * size  # registered in the ledger
    at.session_state["memory_ledger"]["other_page"] = session_budget_bytes() - 0.5 * size  # not even one
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


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


@needs_bundled
def test_the_prediction_comes_first_and_is_graded():
    at = open_page("app_pages/lora.py", query=SMALL, timeout=180, predict=True)
    assert "Will LoRA forget more of the model's old skills" in texts(at)
    at.button(key="lora_train").click().run()  # not before a prediction: the curves would give it away
    assert not at.exception
    assert "Lock your prediction (or skip it) first" in texts(at) and "lora_result" not in at.session_state
    at.radio(key="lora_predict_answer").set_value("Full fine-tuning forgets more")
    at.text_input(key="lora_predict_why").input("LoRA Learns Less and Forgets Less")
    _button(at, "Lock my prediction").click().run()
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** Full fine-tuning forgets more (70% sure)" in shown
    comparison = at.session_state["lora_result"].report().comparison
    right = {"lora": "LoRA forgets more", "same": "About the same", "full": "Full fine-tuning forgets more"}
    assert f"**Measured:** {right[comparison.more].lower()}" in shown
    mark = ":material/check: right" if comparison.more == "full" else ":material/close: not this time"
    assert mark in shown
    assert "What to notice" in shown  # the result is shown once graded
    _button(at, "Predict again").click().run()  # a new prediction for the same run: its result hides again
    assert not at.exception
    assert "results are hidden until you lock or skip" in texts(at) and "What to notice" not in texts(at)


def test_without_full_fine_tuning_the_question_is_the_mean_drop(tiny_model_dir):
    at = open_page("app_pages/lora.py", query={**SMALL, "model": str(tiny_model_dir("gpt2")),
                                               "lora_compare": "IA3"}, timeout=120, predict=True)
    assert "By how much will the old skills' accuracy fall under LoRA" in texts(at)
    _button(at, "Skip this time").click().run()
    at.button(key="lora_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.dataframe[0].value["run"]) == ["LoRA r=4", "IA3"]


def test_fuzz_uploads_and_folder_names_never_raise(tiny_model_dir):
    """Random bytes as the zip upload, random strings in the folder box: a message, never an exception."""
    rng = random.Random(13)
    at = open_page("app_pages/lora.py", query={**SMALL, "model": str(tiny_model_dir("gpt2"))}, timeout=120)
    for i in range(6):
        n = rng.choice([0, 1, 22, 300, 5000])
        blob = bytes(rng.randrange(256) for _ in range(n))
        if i % 2:  # random bytes behind a zip's magic number get further into the parser
            blob = b"PK\x03\x04" + blob
        at.file_uploader(key="lora_upload").upload("fuzz.zip", blob, "application/zip")
        at.button(key="lora_load").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert _warnings(at), "no message for a bad upload"
    at.file_uploader(key="lora_upload").clear()
    alphabet = "ab/._~\\\x00\n é😀$%{}" + "x" * 5
    for _ in range(6):
        name = "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 7, 60, 400, 5000])))
        at.text_input(key="lora_adapter_dir").set_value(name)
        at.button(key="lora_load").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert _warnings(at) or not name.strip()
