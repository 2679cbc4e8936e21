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

from core.interp.finetune.adapter_io import (
    ALLOW_ANY_FOLDER_ENV,
    REPO_DIR,
    AdapterLoadError,
    adapter_zip,
    load_adapter,
)
from core.interp.finetune.methods import FinetuneConfig, adapted_copy
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
    _, _, config = load_adapter(gpt2, make_zip(files))
    assert config["peft_type"] == "LORA" and config["r"] == 2


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
    assert "size mismatch" in str(err.value) and len(str(err.value)) < 500  # PEFT's list, cut short


def test_weights_missing_from_the_file_are_not_silently_left_at_their_start(gpt2, files):
    weights = load_tensors(files["adapter_model.safetensors"])
    kept = dict(sorted(weights.items())[:3])
    with pytest.raises(AdapterLoadError, match=f"lacks {len(weights) - 3} of the adapter's weights"):
        load_adapter(gpt2, make_zip({**files, "adapter_model.safetensors": save_tensors(kept)}))
    with pytest.raises(AdapterLoadError, match=f"lacks {len(weights)} of"):
        load_adapter(gpt2, make_zip({**files, "adapter_model.safetensors": save_tensors({})}))


@pytest.mark.parametrize(("changes", "weights", "message"), [
    ({"r": "eight"}, None, "damaged or not as PEFT's save_pretrained writes them"),  # TypeError in PEFT
    ({"target_modules": 5}, None, "damaged or not as PEFT's save_pretrained writes them"),  # TypeError
    ({}, b"no safetensors", "damaged or not as PEFT's save_pretrained writes them"),  # SafetensorError
    ({"task_type": "TRANSLATE"}, None, "config is not one PEFT accepts"),  # ValueError
])
def test_configs_and_files_peft_rejects_get_a_message(gpt2, files, changes, weights, message):
    blob = _with_config(files, **changes)
    if weights is not None:
        blob = make_zip({**files, "adapter_model.safetensors": weights})
    with pytest.raises(AdapterLoadError, match=message):
        load_adapter(gpt2, blob)


def test_folders_are_read_only_under_the_temp_folder_or_the_repository(gpt2, files, monkeypatch, tmp_path):
    monkeypatch.delenv(ALLOW_ANY_FOLDER_ENV, raising=False)
    good = tmp_path / "adapter"
    good.mkdir()
    for name, data in files.items():
        (good / name).write_bytes(data)
    assert load_adapter(gpt2, str(good))[2]["r"] == 2  # under the system temp folder
    assert Path(tempfile.gettempdir()).resolve() in tmp_path.resolve().parents
    with pytest.raises(AdapterLoadError, match="No adapter_config.json"):  # the repository is allowed
        load_adapter(gpt2, REPO_DIR / "docs")
    outside = "/etc" if os.path.isdir("/etc") else "/"
    with pytest.raises(AdapterLoadError, match=f"only under .*{ALLOW_ANY_FOLDER_ENV}=1.*Upload the adapter"):
        load_adapter(gpt2, outside)
    (tmp_path / "link").symlink_to(outside)  # a link inside the temp folder does not lead out of it
    with pytest.raises(AdapterLoadError, match="only under"):
        load_adapter(gpt2, str(tmp_path / "link"))
    with pytest.raises(AdapterLoadError, match="only under"):
        load_adapter(gpt2, str(tmp_path / os.path.relpath(outside, tmp_path)))  # tmp/../../etc
    with pytest.raises(AdapterLoadError, match="not a folder"):
        load_adapter(gpt2, str(tmp_path / "missing"))
    monkeypatch.setenv(ALLOW_ANY_FOLDER_ENV, "1")  # the server allows any folder
    with pytest.raises(AdapterLoadError, match="No adapter_config.json"):
        load_adapter(gpt2, outside)
