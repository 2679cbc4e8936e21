"""Hostile adapter files (issue 13): every size, shape and value is checked from the files' headers
before PEFT builds anything, every damaged archive is a message, and random bytes never raise anything
but AdapterLoadError."""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile

import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

import core.interp.finetune.adapter_io as adapter_io
from core.interp.finetune.adapter_check import MAX_ABS_WEIGHT, read_header
from core.interp.finetune.adapter_files import MAX_MEMBERS, AdapterLoadError
from core.interp.finetune.adapter_io import adapter_zip, load_adapter, max_weights_bytes
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy
from core.models import load_model
from tests.unit.zips import make_zip


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


@pytest.fixture(scope="module")
def files(gpt2) -> dict[str, bytes]:
    """The files of a good, trained-looking LoRA adapter (r = 2) for the tiny GPT-2."""
    _, peft_model = adapted_copy(gpt2, FinetuneConfig(rank=2))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    with zipfile.ZipFile(io.BytesIO(adapter_zip(peft_model, gpt2.spec))) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture()
def nothing_is_built(gpt2, monkeypatch):
    """Fail the test if the model is copied or PEFT builds a model."""
    def refuse(*args, **kwargs):
        raise AssertionError("built before the files were checked")
    monkeypatch.setattr(gpt2, "detached_model", refuse)
    monkeypatch.setattr(adapter_io, "PeftModel", refuse)


def _config(files, **changes) -> dict[str, bytes]:
    config = json.loads(files["adapter_config.json"])
    return {**files, "adapter_config.json": json.dumps({**config, **changes}).encode()}


def _weights(files, fn) -> dict[str, bytes]:
    tensors = load_tensors(files["adapter_model.safetensors"])
    return {**files, "adapter_model.safetensors": save_tensors({k: fn(k, v) for k, v in tensors.items()})}


def _refused(gpt2, blob: bytes, message: str) -> str:
    with pytest.raises(AdapterLoadError, match=message) as err:
        load_adapter(gpt2, blob)
    return str(err.value)


def test_a_huge_rank_in_the_config_is_refused_before_peft_allocates(gpt2, files, nothing_is_built):
    # the audit's r100000.zip: good weights, a config asking PEFT for 3 GB
    text = _refused(gpt2, make_zip(_config(files, r=100_000)), "rank r = 100,000")
    assert "larger than that matrix's smaller side (32)" in text
    _refused(gpt2, make_zip(_config(files, r=4)), "wrong shape")  # a plausible rank that the file lacks
    _refused(gpt2, make_zip(_config(files, rank_pattern={"c_attn": 10**6})), "rank r = 1,000,000")
    _refused(gpt2, make_zip(_config(files, r=-5)), "r must be a whole number from 1")
    _refused(gpt2, make_zip(_config(files, r=True)), "r must be a whole number")


@pytest.mark.parametrize(("changes", "message"), [
    ({"target_modules": ["wte"]}, "targets 'transformer.wte', which is a Embedding"),  # not a matrix layer
    ({"target_modules": ["ln_f"]}, "targets 'transformer.ln_f', which is a LayerNorm"),
    ({"target_modules": ["q_proj"]}, "names no module of"),  # a Llama adapter's modules
    ({"target_modules": ".*(a+)+$"}, "patterns are not read"),  # a regular expression from a file
    ({"rank_pattern": {"(x+x+)+y": 4}}, "patterns are not read"),
    ({"use_dora": True}, "uses DoRA"),
    ({"modules_to_save": ["lm_head"]}, "whole modules trained next to the adapter"),
    ({"layer_replication": [[0, 2]]}, "replicated layers"),
    ({"target_modules": None}, "lists no target_modules"),
])
def test_configs_that_do_not_fit_the_model_are_refused_from_the_config(gpt2, files, nothing_is_built,
                                                                         changes, message):
    _refused(gpt2, make_zip(_config(files, **changes)), message)


def test_the_header_must_hold_exactly_the_planned_tensors(gpt2, files, nothing_is_built):
    extra = _weights(files, lambda k, v: v)
    tensors = load_tensors(extra["adapter_model.safetensors"])
    tensors["base_model.model.transformer.wte.lora_A.weight"] = torch.zeros(2, 5)
    blob = make_zip({**files, "adapter_model.safetensors": save_tensors(tensors)})
    _refused(gpt2, blob, "holds 1 tensor\\(s\\) this adapter's config does not explain")
    ints = _weights(files, lambda k, v: v.to(torch.int32))
    _refused(gpt2, make_zip(ints), "holds a I32 tensor .* only floating-point weights")
    f8 = _weights(files, lambda k, v: v.to(torch.float8_e4m3fn))
    _refused(gpt2, make_zip(f8), "holds a F8_E4M3 tensor")


def _header_blob(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(("blob", "message"), [
    (b"1234", "too short"),
    (struct.pack("<Q", 10**12) + b"{}", "its header claims 1,000,000,000,000 bytes"),
    (struct.pack("<Q", 5) + b"[1,2]", "not a table"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
    (_header_blob({"a": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 16]}}, bytes(16)),
     "does not fit the file"),  # a claimed shape with nothing behind it
    (_header_blob({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)),
     "does not fit the file"),  # offsets past the end
    (_header_blob({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, bytes(16)),
     "does not fit the file"),
    (_header_blob({"a": "F32"}), "entry 'a'"),
    (struct.pack("<Q", 4000) + b"[" * 2000 + b"]" * 2000, "not a table|not JSON"),
])
def test_a_damaged_safetensors_header_is_a_message(blob, message):
    with pytest.raises(AdapterLoadError, match=message):
        read_header(blob)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e38, MAX_ABS_WEIGHT * 2])
def test_weights_that_are_not_finite_or_absurd_are_refused(gpt2, files, value):
    bad = _weights(files, lambda k, v: torch.full_like(v, value) if "lora_B" in k else v)
    _refused(gpt2, make_zip(bad), "NaN or infinite|holds a weight of size")
    ok = _weights(files, lambda k, v: torch.full_like(v, MAX_ABS_WEIGHT) if "lora_B" in k else v)
    assert load_adapter(gpt2, make_zip(ok)).plan.rank == 2  # the limit itself is allowed


def test_nan_in_float16_and_float64_files_too(gpt2, files):
    for dtype in (torch.float16, torch.float64):
        bad = _weights(files, lambda k, v, d=dtype: torch.full_like(v, float("nan")).to(d))
        _refused(gpt2, make_zip(bad), "NaN or infinite")
    big = _weights(files, lambda k, v: torch.full_like(v, 1e300, dtype=torch.float64))  # inf in float32
    _refused(gpt2, make_zip(big), "NaN or infinite")


def _corrupt_deflate(files) -> bytes:
    """A deflated zip with bytes of the weights' compressed data flipped (the audit's corrupt.zip)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("adapter_model.safetensors")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 10, start + 30):
        raw[i] ^= 0xFF
    return bytes(raw)


def _bad_crc(files) -> bytes:
    """A stored (uncompressed) zip whose weights' CRC-32 in the table is wrong (the audit's badcrc.zip)."""
    raw = bytearray(make_zip(files))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("adapter_model.safetensors")
    raw[info.header_offset + 30 + len(info.filename) + 100] ^= 0x01  # one data bit: the CRC no longer matches
    return bytes(raw)


def test_damaged_zips_get_a_message(gpt2, files):
    for blob in (_corrupt_deflate(files), _bad_crc(files)):
        text = _refused(gpt2, blob, "The zip is damaged")
        assert "error" in text.lower() or "crc" in text.lower()
    unknown = bytearray(make_zip(files))  # a compression method zipfile does not know: NotImplementedError
    with zipfile.ZipFile(io.BytesIO(bytes(unknown))) as zf:
        infos = zf.infolist()
    for info in infos:
        struct.pack_into("<H", unknown, info.header_offset + 8, 99)  # local header's method
    central = unknown.rfind(b"PK\x01\x02", 0)
    while central != -1:
        struct.pack_into("<H", unknown, central + 10, 99)
        central = unknown.rfind(b"PK\x01\x02", 0, central)
    _refused(gpt2, bytes(unknown), "damaged|not a zip")
    _refused(gpt2, make_zip(files)[:-30], "not a zip archive, or it is damaged")  # cut short


def test_sizes_come_from_the_table_before_anything_is_unpacked(gpt2, files, monkeypatch):
    limit = max_weights_bytes(gpt2)
    buf = io.BytesIO()  # the audit's bomb: a small zip that unpacks to megabytes of zeros
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("adapter_config.json", files["adapter_config.json"])
        zf.writestr("adapter_model.safetensors", bytes(limit + 1))
    assert len(buf.getvalue()) < limit / 100
    big_config = make_zip({**files, "adapter_config.json": b" " * 1_000_001})

    def no_unpacking(*args, **kwargs):
        raise AssertionError("a member was unpacked")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_unpacking)
    text = _refused(gpt2, buf.getvalue(), "more than an adapter for this model can be")
    assert f"{(limit + 1) / 1e6:,.1f} MB unpacked" in text
    _refused(gpt2, big_config, "adapter_config.json would be 1.0 MB unpacked")


def test_too_many_members_and_pickles(gpt2, files):
    many = {f"f{i}.txt": b"" for i in range(MAX_MEMBERS + 1)}
    _refused(gpt2, make_zip({**files, **many}), f"holds {len(files) + MAX_MEMBERS + 1:,} files")
    _refused(gpt2, make_zip({"adapter_config.json": files["adapter_config.json"], "adapter_model.bin": b"x"}),
             "only safetensors are read \\(a pickled .bin file is never read\\)")
    nested = {f"my_adapter/{k}": v for k, v in files.items()}  # one folder down, as some zips are
    assert load_adapter(gpt2, make_zip(nested)).plan.rank == 2


def test_random_bytes_and_mutated_zips_only_ever_raise_adapter_load_error(gpt2, files):
    rng = random.Random(0)
    good = make_zip(files)
    loaded = 0
    for i in range(150):
        if i % 3 == 0:
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        else:  # a good zip with a few random bytes changed: damage the parsers see
            raw = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            blob = bytes(raw)
        try:
            load_adapter(gpt2, blob)
            loaded += 1
        except AdapterLoadError as err:
            assert str(err)
    assert loaded < 150  # the damage was seen


def test_random_folder_names_only_ever_raise_adapter_load_error(gpt2):
    rng = random.Random(1)
    alphabet = "ab/._~\\\x00\n é😀" + "x" * 5
    for _ in range(200):
        name = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 50, 300, 5000])))
        with pytest.raises(AdapterLoadError):
            load_adapter(gpt2, name)
