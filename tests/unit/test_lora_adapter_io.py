"""Malformed adapters end in an AdapterLoadError with a message (never JSONDecodeError, AttributeError,
TypeError or a safetensors error), and adapter folders are read only where the server allows."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from core.interp.finetune.adapter_files import (
    ALLOW_ANY_FOLDER_ENV,
    REPO_DIR,
    AdapterLoadError,
    folder_message,
)
from core.interp.finetune.adapter_io import adapter_zip, load_adapter
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy
from core.models import load_model
from tests.unit.zips import make_zip


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


@pytest.fixture(scope="module")
def files(gpt2) -> dict[str, bytes]:
    """The files of a good LoRA adapter (r = 2) for the tiny GPT-2."""
    _, peft_model = adapted_copy(gpt2, FinetuneConfig(rank=2))
    with zipfile.ZipFile(io.BytesIO(adapter_zip(peft_model, gpt2.spec))) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _with_config(files, **changes) -> bytes:
    config = json.loads(files["adapter_config.json"])
    return make_zip({**files, "adapter_config.json": json.dumps({**config, **changes}).encode()})


def test_the_good_adapter_loads(gpt2, files):
    loaded = load_adapter(gpt2, make_zip(files))
    assert loaded.config["peft_type"] == "LORA" and loaded.config["r"] == 2
    assert loaded.plan.rank == 2 and loaded.method == "lora"


@pytest.mark.parametrize(("config", "message"), [
    (b'{"peft_type": "LORA",', "adapter_config.json is not a readable JSON file"),  # JSONDecodeError
    (b"\xff\xfe not utf-8", "adapter_config.json is not a readable JSON file"),  # UnicodeDecodeError
    (b'["LORA", 8]', "must hold a JSON object (settings by name), not a list"),  # AttributeError on .get
    (b'"LORA"', "must hold a JSON object (settings by name), not a str"),
])
def test_a_config_that_is_not_a_json_object_gets_a_message(gpt2, files, config, message):
    with pytest.raises(AdapterLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_adapter(gpt2, make_zip({**files, "adapter_config.json": config}))


def test_wrong_shaped_weights_do_not_fit(gpt2, files):
    weights = load_tensors(files["adapter_model.safetensors"])
    wrong = {k: torch.zeros(v.shape[0] + 1, v.shape[1]) for k, v in weights.items()}  # r = 3 where r = 2
    with pytest.raises(AdapterLoadError, match="does not fit") as err:
        load_adapter(gpt2, make_zip({**files, "adapter_model.safetensors": save_tensors(wrong)}))
    message = str(err.value)  # found from the header, before PEFT built anything
    assert "tensor(s) have the wrong shape" in message and "[3, 32] where this model needs [2, 32]" in message
    assert len(message) < 500


def test_weights_missing_from_the_file_are_not_silently_left_at_their_start(gpt2, files):
    weights = load_tensors(files["adapter_model.safetensors"])
    kept = dict(sorted(weights.items())[:3])
    with pytest.raises(AdapterLoadError, match=f"lacks {len(weights) - 3} of the adapter's weights"):
        load_adapter(gpt2, make_zip({**files, "adapter_model.safetensors": save_tensors(kept)}))
    with pytest.raises(AdapterLoadError, match=f"lacks {len(weights)} of"):
        load_adapter(gpt2, make_zip({**files, "adapter_model.safetensors": save_tensors({})}))


@pytest.mark.parametrize(("changes", "weights", "message"), [
    ({"r": "eight"}, None, "r must be a whole number"),  # a TypeError inside PEFT, before
    ({"target_modules": 5}, None, "target_modules must be a list of module names"),
    ({}, b"no safetensors", "damaged or not a safetensors file"),  # SafetensorError, before
    ({"lora_alpha": float("nan")}, None, "lora_alpha must be a number"),
    ({"peft_type": "PROMPT_TUNING"}, None, "reads LoRA and IA3 adapters, not 'PROMPT_TUNING'"),
    ({"bias": "all"}, None, "trains biases too"),
    ({"layers_to_transform": "all"}, None, "layers_to_transform must be a list of layer numbers"),
])
def test_configs_and_files_peft_rejects_get_a_message(gpt2, files, changes, weights, message):
    blob = _with_config(files, **changes)
    if weights is not None:
        blob = make_zip({**files, "adapter_model.safetensors": weights})
    with pytest.raises(AdapterLoadError, match=message):
        load_adapter(gpt2, blob)


def test_an_unknown_task_type_is_ignored_and_bad_feedforward_modules_are_refused(gpt2, files):
    assert load_adapter(gpt2, _with_config(files, task_type="TRANSLATE")).plan.rank == 2  # task_type: unused
    config = json.loads(files["adapter_config.json"])
    ia3 = {**config, "peft_type": "IA3", "feedforward_modules": ["not.a.target"]}
    with pytest.raises(AdapterLoadError, match="not one PEFT accepts: .*subset of `target_modules`"):
        load_adapter(gpt2, make_zip({**files, "adapter_config.json": json.dumps(ia3).encode()}))


def _message(gpt2, source) -> str:
    with pytest.raises(AdapterLoadError) as err:
        load_adapter(gpt2, source)
    return str(err.value)


def test_folders_are_read_only_under_the_temp_folder_or_the_repository(gpt2, files, monkeypatch, tmp_path):
    monkeypatch.delenv(ALLOW_ANY_FOLDER_ENV, raising=False)
    good = tmp_path / "adapter"
    good.mkdir()
    for name, data in files.items():
        (good / name).write_bytes(data)
    assert load_adapter(gpt2, str(good)).config["r"] == 2  # under the system temp folder
    assert load_adapter(gpt2, str(tmp_path)).config["r"] == 2  # or one folder down
    assert Path(tempfile.gettempdir()).resolve() in tmp_path.resolve().parents
    outside = "/etc" if os.path.isdir("/etc") else "/"
    (tmp_path / "link").symlink_to(outside)  # a link inside the temp folder does not lead out of it
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "leak").mkdir()
    (tmp_path / "leak" / "adapter_config.json").symlink_to(good / "adapter_config.json")
    (tmp_path / "leak" / "adapter_model.safetensors").symlink_to("/etc/hostname")  # a file outside
    neutral = folder_message()
    assert f"only under {Path(tempfile.gettempdir()).resolve()} or {REPO_DIR}" in neutral
    assert f"{ALLOW_ANY_FOLDER_ENV}=1" in neutral and "Uploading the adapter as a .zip" in neutral
    # One message whatever the reason: outside the roots, a link out, traversal, missing, a file, an empty
    # folder, the repository without an adapter, a weights link leading out. Nothing says what exists.
    for source in (outside, str(tmp_path / "link"), str(tmp_path / os.path.relpath(outside, tmp_path)),
                   str(tmp_path / "missing"), str(good / "adapter_config.json"), str(empty),
                   REPO_DIR / "docs", str(tmp_path / "leak"), "~/.ssh", "/proc/self"):
        assert _message(gpt2, source) == neutral, source
    monkeypatch.setenv(ALLOW_ANY_FOLDER_ENV, "1")  # the server allows any folder
    assert _message(gpt2, outside) == folder_message() != neutral
    assert "only under" not in folder_message()


@pytest.mark.parametrize(("name", "message"), [
    ("\x00", "holds a NUL character"),
    ("/tmp/a\x00b", "holds a NUL character"),
    ("x" * 5000, "too long (5,000 characters)"),
    ("/tmp/" + "y" * 300, "255 between two slashes"),
])
def test_folder_names_no_file_can_have_get_a_message(gpt2, name, message):
    assert message in _message(gpt2, name)
