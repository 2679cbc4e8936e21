"""SAE files: SAELens's folder layout (written and read without SAELens; test_sae_lens_format.py
checks it against SAELens itself), zipped folders, and hostile files: unsupported dtypes, cut or
lying headers, oversized dictionaries, broken zips, random bytes. Every problem is a ValueError with
a message, and sizes are checked before anything is allocated."""

from __future__ import annotations

import io
import json
import random
import zipfile

import pytest
import torch
from safetensors.torch import save

from core.interp.sae import file_format, model, safetensors_header
from core.interp.sae.features import TooDenseError, feature_acts
from core.interp.sae.file_format import CONFIG_FILE, MAX_EXPANSION, WEIGHTS_FILE, open_sae_bytes, read_notes
from core.interp.sae.model import SAE, SAEConfig
from core.interp.sae.report import analysis_bytes

HOOK = "blocks.1.hook_resid_post"


def _sae(arch: str = "relu", d_in: int = 16, d_sae: int = 64) -> SAE:
    cfg = SAEConfig(d_in, d_sae, arch, k=4 if arch == "topk" else 0, hook_name=HOOK, model_spec="bundled")
    sae = SAE(cfg)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
        sae.b_dec.normal_(generator=torch.Generator().manual_seed(2))
    return sae


def _lab_file(config: dict, tensors: dict) -> bytes:
    return save(tensors, metadata={"sae_config": json.dumps(config)})


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# -- the layout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_save_writes_sae_lens_folder_layout(arch, tmp_path):
    sae = _sae(arch)
    folder = sae.save(tmp_path / "sae", notes={"lab_corpus_docs": "500"})
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    assert cfg["architecture"] == ("standard" if arch == "relu" else "topk")
    assert (cfg["d_in"], cfg["d_sae"], cfg["apply_b_dec_to_input"], cfg["normalize_activations"]) == (
        16, 64, True, "none")
    assert cfg["metadata"]["hook_name"] == HOOK and cfg["metadata"]["model_name"] == "bundled"
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")  # not read as a pre-6.0 config
    assert cfg["metadata"]["lab_corpus_docs"] == "500"
    if arch == "topk":
        assert cfg["k"] == 4 and cfg["rescale_acts_by_decoder_norm"] is True
    header = safetensors_header.read_header((folder / WEIGHTS_FILE).read_bytes())
    assert {n: i.shape for n, i in header.tensors.items()} == {
        "W_enc": (16, 64), "W_dec": (64, 16), "b_enc": (64,), "b_dec": (16,)}
    assert all(i.dtype == "F32" for i in header.tensors.values())


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_a_zipped_folder_loads_back_identically_with_its_notes(arch):
    sae = _sae(arch)
    blob = sae.to_zip(notes={"lab_corpus_docs": "500"}, folder_name="my_sae")
    assert sorted(zipfile.ZipFile(io.BytesIO(blob)).namelist()) == ["my_sae/cfg.json",
                                                                     "my_sae/sae_weights.safetensors"]
    back = SAE.load(blob)
    x = torch.randn(40, 16)
    assert back.cfg == sae.cfg and torch.equal(back(x), sae(x))
    assert read_notes(blob) == {"lab_corpus_docs": "500"}
    with pytest.raises(ValueError, match="start with 'lab_'"):
        sae.to_zip(notes={"corpus": "500"})


def test_the_weights_file_alone_still_says_what_it_is(tmp_path):
    sae = _sae()
    folder = sae.save(tmp_path / "sae")
    assert SAE.load(folder / WEIGHTS_FILE).cfg == sae.cfg


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_and_double_precision_weights_load_as_float32(dtype):
    sae = _sae()
    tensors = {k: v.to(dtype) for k, v in sae.tensors().items()}
    back = SAE.load(_lab_file({"d_in": 16, "d_sae": 64, "hook_name": HOOK}, tensors))
    assert back.W_enc.dtype == torch.float32
    assert torch.equal(back.W_enc, tensors["W_enc"].float())


# -- SAELens configs, read without SAELens -----------------------------------------------------------
def _lens_zip(cfg: dict, tensors: dict) -> bytes:
    return _zip({f"lens/{CONFIG_FILE}": json.dumps(cfg).encode(), f"lens/{WEIGHTS_FILE}": save(tensors)})


LENS_CFG = {"d_in": 16, "d_sae": 64, "architecture": "standard", "dtype": "float32",
            "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
            "metadata": {"sae_lens_version": "6.54.12", "hook_name": HOOK, "model_name": "bundled"}}


def test_an_encoder_that_reads_x_is_rewritten_exactly():
    gen = torch.Generator().manual_seed(3)
    w = {"W_enc": torch.randn(16, 64, generator=gen), "W_dec": torch.randn(64, 16, generator=gen),
         "b_enc": torch.randn(64, generator=gen), "b_dec": torch.randn(16, generator=gen)}
    sae = SAE.load(_lens_zip({**LENS_CFG, "apply_b_dec_to_input": False}, w))
    x = torch.randn(50, 16, generator=gen)
    f = torch.relu(x @ w["W_enc"] + w["b_enc"])  # SAELens's encoder with apply_b_dec_to_input false
    with torch.no_grad():
        assert torch.allclose(sae(x), f @ w["W_dec"] + w["b_dec"], atol=1e-4)
        norms = w["W_dec"].norm(dim=1)
        assert torch.allclose(sae.encode(x), f * norms, atol=1e-4)  # rows folded to unit length
    assert sae.cfg.hook_name == HOOK and sae.cfg.model_spec == "bundled"


def test_an_old_sae_lens_config_is_understood():
    old = {"d_in": 16, "d_sae": 64, "hook_point": HOOK, "model_name": "gpt2", "activation_fn": "topk",
           "activation_fn_kwargs": {"k": 3}}
    sae = SAE.load(_lens_zip(old, {k: v for k, v in _sae().tensors().items()}))
    assert sae.cfg == SAEConfig(16, 64, "topk", 3, HOOK, "gpt2")


LENS_REFUSED = {
    "jumprelu": ({"architecture": "jumprelu"}, "'jumprelu' SAE: this lab reads 'standard'"),
    "layer-norm": ({"normalize_activations": "layer_norm"}, "normalises its input at run time"),
    "hook-z": ({"reshape_activations": "hook_z"}, "reads attention heads"),
    "one-head": ({"metadata": {"hook_head_index": 3}}, "a single attention head"),
    "d_in-string": ({"d_in": "16"}, "d_in should be int"),
    "k-missing": ({"architecture": "topk"}, "k should be int"),
    "k-too-big": ({"architecture": "topk", "k": 65, "rescale_acts_by_decoder_norm": True}, "0 < k <= d_sae"),
    "hook-list": ({"metadata": {"hook_name": ["h"]}}, "hook_name should be a"),
    "cfg-list": (None, "cfg.json is not a JSON object"),
}


@pytest.mark.parametrize("case", list(LENS_REFUSED))
def test_sae_lens_configs_this_lab_cannot_honour_are_refused(case):
    change, message = LENS_REFUSED[case]
    cfg = [1, 2] if change is None else {**LENS_CFG, **change}
    with pytest.raises(ValueError, match=message):
        SAE.load(_lens_zip(cfg, _sae().tensors()))


# -- hostile files --------------------------------------------------------------------------------
def test_float8_weights_get_a_message_not_a_crash():
    tensors = {**_sae().tensors(), "W_enc": _sae().W_enc.detach().to(torch.float8_e4m3fn)}
    raw = _lab_file({"d_in": 16, "d_sae": 64}, tensors)
    with pytest.raises(ValueError, match=r"W_enc is stored as 8-bit float \(F8_E4M3\); this lab reads"):
        SAE.load(raw)
    with pytest.raises(ValueError, match="stored as 8-bit float"):  # the same inside a SAELens zip
        SAE.load(_lens_zip(LENS_CFG, tensors))


def test_a_file_cut_short_is_explained():
    raw = _sae().to_bytes()
    with pytest.raises(ValueError, match="cut short"):
        SAE.load(raw[:-100])
    with pytest.raises(ValueError, match="header is cut short"):
        SAE.load(raw[:50])


def test_lying_or_huge_headers_are_refused_before_reading_them():
    with pytest.raises(ValueError, match="header is cut short"):
        SAE.load((10**15).to_bytes(8, "little") + b"{}")
    big = b"{" + b" " * (safetensors_header.MAX_HEADER_BYTES + 10) + b"}"
    with pytest.raises(ValueError, match="header claims"):
        SAE.load(len(big).to_bytes(8, "little") + big)
    lying = {"__metadata__": {"sae_config": json.dumps({"d_in": 16, "d_sae": 64})},
             "W_enc": {"dtype": "F32", "shape": [16, 64], "data_offsets": [0, 8]}}
    text = json.dumps(lying).encode()
    with pytest.raises(ValueError, match="does not match its 8 bytes"):
        SAE.load(len(text).to_bytes(8, "little") + text + b"\0" * 8)
    negative = {**lying, "W_enc": {"dtype": "F32", "shape": [-16, 64], "data_offsets": [0, 8]}}
    text = json.dumps(negative).encode()
    with pytest.raises(ValueError, match="no valid shape"):
        SAE.load(len(text).to_bytes(8, "little") + text + b"\0" * 8)


def test_an_oversized_dictionary_is_refused_from_the_header_alone(monkeypatch):
    # The audit's file: a valid fp16 SAE with d_sae = 16,384 on width 128 (8.4 MB). Its report took
    # the server from 1.1 to 5.9 GB. Now nothing is built: the header says it is over the cap.
    d_in, d_sae = 128, 16_384
    half = torch.float16
    tensors = {"W_enc": torch.zeros(d_in, d_sae, dtype=half), "W_dec": torch.zeros(d_sae, d_in, dtype=half),
               "b_enc": torch.zeros(d_sae, dtype=half), "b_dec": torch.zeros(d_in, dtype=half)}
    raw = _lab_file({"d_in": d_in, "d_sae": d_sae, "architecture": "relu", "k": 0, "hook_name": HOOK,
                     "model_spec": "bundled"}, tensors)

    def boom(*args, **kwargs):
        raise AssertionError("a tensor was built before the size check")

    monkeypatch.setattr(model, "load_float32", boom)
    monkeypatch.setattr(SAE, "__init__", boom)
    with pytest.raises(ValueError, match=f"16,384 features for width 128: more than {MAX_EXPANSION} x d_in"):
        SAE.load(raw)
    ok = open_sae_bytes(_lab_file({"d_in": 16, "d_sae": 16 * MAX_EXPANSION}, {
        "W_enc": torch.zeros(16, 512), "W_dec": torch.zeros(512, 16), "b_enc": torch.zeros(512),
        "b_dec": torch.zeros(16)}))
    assert ok.parameter_bytes == 4 * (2 * 16 * 512 + 16 + 512)  # at the cap: accepted, nothing built


def test_the_report_memory_bound_is_computed_from_sizes_and_a_dense_sae_stops_early(monkeypatch):
    # the bound holds the sparse activations to MAX_ACTIVE whatever the dictionary size
    small, capped = analysis_bytes(128, 512, 1_000), analysis_bytes(128, 4096, 25_000)
    assert small < 20e6 and capped == analysis_bytes(128, 4096, 10**9) < 600e6
    sae = SAE(SAEConfig(8, 64))
    with torch.no_grad():
        sae.b_enc.fill_(100.0)  # every feature fires on every token
    calls = []
    encode = SAE.encode
    monkeypatch.setattr(SAE, "encode", lambda self, x: calls.append(len(x)) or encode(self, x))
    with pytest.raises(TooDenseError, match="active on about 64 of its 64 features per token"):
        feature_acts(sae, torch.randn(1000, 8), torch.zeros(1000, dtype=torch.long), chunk=100,
                     max_active=3000)
    assert len(calls) == 1  # stopped after the first chunk that crossed the limit


ZIP_CASES = {
    "not-a-zip": (lambda: b"PK\x03\x04" + b"\x00" * 40, "Not a readable SAE zip"),
    "no-config": (lambda: _zip({WEIGHTS_FILE: _sae().to_bytes()}), "exactly one cfg.json"),
    "two-weights": (lambda: _zip({CONFIG_FILE: json.dumps(LENS_CFG).encode(), WEIGHTS_FILE: b"",
                                  f"x/{WEIGHTS_FILE}": b""}), "exactly one sae_weights.safetensors"),
    "bad-cfg-json": (lambda: _zip({CONFIG_FILE: b"{not", WEIGHTS_FILE: _sae().to_bytes()}),
                     "not readable JSON"),
    "empty-zip": (lambda: _zip({}), "exactly one cfg.json"),
}


@pytest.mark.parametrize("case", list(ZIP_CASES))
def test_broken_zips_are_explained(case):
    make, message = ZIP_CASES[case]
    with pytest.raises(ValueError, match=message):
        SAE.load(make())


def test_a_damaged_zip_member_is_explained():
    blob = bytearray(_sae().to_zip())
    start = blob.index(b"sae_weights.safetensors") + len("sae_weights.safetensors") + 40
    for i in range(start, start + 200):  # damage the deflated weights
        blob[i] ^= 0x5A
    with pytest.raises(ValueError, match="Not a readable SAE zip"):
        SAE.load(bytes(blob))


def test_a_zip_member_is_read_only_up_to_the_size_it_declares(monkeypatch):
    monkeypatch.setattr(file_format, "MAX_WEIGHTS_BYTES", 1000)
    with pytest.raises(ValueError, match="sae_weights.safetensors claims"):
        SAE.load(_sae().to_zip())


def test_random_bytes_and_strings_only_ever_raise_value_errors():
    rng = random.Random(0)
    good = _sae().to_bytes()
    zipped = _sae().to_zip()
    for i in range(300):
        kind = i % 5
        if kind == 0:
            raw = rng.randbytes(rng.randint(0, 400))
        elif kind == 1:
            text = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 200)))
            raw = text.encode("utf-8", "replace")
        elif kind == 2:  # a real header with random damage
            raw = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(min(len(raw), 300))] = rng.randrange(256)
            raw = bytes(raw)
        elif kind == 3:  # a real zip with random damage
            raw = bytearray(zipped)
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            raw = bytes(raw)
        else:  # a plausible length prefix and random JSON-ish text
            text = rng.choice(['{"W_enc": {"dtype": "F32"}}', '{"__metadata__": {"sae_config": "{}"}}',
                               "[" * 5000, '{"a": ' * 2000, rng.randbytes(30).hex()]).encode()
            raw = len(text).to_bytes(8, "little") + text
        try:
            SAE.load(raw)
        except ValueError:
            pass
