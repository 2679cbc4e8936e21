"""Loading and prompt handling: every bad input gets a clear message, never a crash.

Hub loading is tested on a fake hub cache: a tiny model laid out the way huggingface_hub stores a
download (models--org--name/refs/main, snapshots/<commit>/...), under a temp HF_HUB_CACHE.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import BertConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from core.models import BUNDLED, EmptyPromptError, ModelLoadError, catalog, load_model, loading
from core.models.loading import LINK_REFUSED, canonical_spec, resolve_spec

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(cache: Path, repo_id: str, source: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """Lay out `source`'s files in `cache` as huggingface_hub stores a downloaded repo; return the
    snapshot folder. `skip` leaves files out (an incomplete download)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for f in source.iterdir():
        if f.name not in skip:
            shutil.copy(f, snapshot / f.name)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_unknown_hub_id_offline_fails_at_once_and_says_why():
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="not on this machine.*cannot be reached"):
        load_model("no-such-org/no-such-model-xyz")
    assert time.perf_counter() - start < 5  # no retries: HF_HUB_OFFLINE=1 means unreachable at once


def test_a_cached_hub_model_loads_with_no_network(hub_cache, tiny_model_dir, monkeypatch):
    fake_hub_cache(hub_cache, "local-org/tiny-gpt2", tiny_model_dir("gpt2"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # only the cache check keeps the hub out
    catalog.forget_reachability()
    reached = []
    monkeypatch.setattr(catalog, "_try_connect", lambda *a: reached.append(a) or False)
    lm = load_model("local-org/tiny-gpt2")
    assert lm.spec == "local-org/tiny-gpt2" and lm.cfg.arch == "gpt2" and lm.cfg.n_layers == 2
    assert reached == []  # the cache answered; the hub was never asked
    assert catalog.cached_model_ids() == ["local-org/tiny-gpt2"]


def test_an_incomplete_cached_download_is_not_offered_as_on_this_machine(hub_cache, tiny_model_dir):
    fake_hub_cache(hub_cache, "org/no-weights", tiny_model_dir("gpt2"), skip=("model.safetensors",))
    fake_hub_cache(hub_cache, "org/complete", tiny_model_dir("gpt2"))
    assert catalog.cached_model_ids() == ["org/complete"]
    assert catalog.cached_snapshot("org/no-weights") is None
    with pytest.raises(ModelLoadError, match="not on this machine"):
        load_model("org/no-weights")


def test_hub_reachability_is_checked_once_and_cached(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as server:  # a local "hub" that accepts connections
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        catalog.forget_reachability()
        assert catalog.hub_reachable()
        port = server.getsockname()[1]
    # The server is gone, but the answer is reused within the TTL, and checked again after forgetting.
    assert catalog.hub_reachable()
    catalog.forget_reachability()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    assert not catalog.hub_reachable()
    assert time.perf_counter() - start < catalog.REACHABLE_TIMEOUT_S + 0.5
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    catalog.forget_reachability()
    assert not catalog.hub_reachable()
    catalog.forget_reachability()


def test_an_unreachable_hub_answers_within_the_timeout(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    released = threading.Event()

    def hanging_resolver(*args, **kwargs):  # hangs, then fails as a resolver does (an OSError)
        released.wait(30)
        raise socket.gaierror("name lookup timed out")

    monkeypatch.setattr(socket, "create_connection", hanging_resolver)
    catalog.forget_reachability()
    try:
        start = time.perf_counter()
        assert not catalog.hub_reachable(timeout=0.3)
        assert time.perf_counter() - start < 1.0
    finally:
        released.set()  # the background attempt ends now, not during some later test
        catalog.forget_reachability()


def test_spellings_of_one_folder_are_one_spec(tiny_model_dir, monkeypatch):
    folder = tiny_model_dir("gpt2")
    monkeypatch.chdir(folder.parent)
    spellings = [str(folder), str(folder) + "/", "/" + str(folder), f"./{folder.name}",
                 f"{folder.parent}/./{folder.name}", f"{folder.parent}/x/../{folder.name}", folder.name]
    assert {canonical_spec(s) for s in spellings} == {str(folder.resolve())}
    assert canonical_spec("  gpt2 ") == "gpt2" and canonical_spec("") == canonical_spec(None) == BUNDLED


def test_a_missing_typed_folder_says_no_such_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="No such folder"):
        load_model(str(tmp_path / "nothing-here"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(str(tmp_path / "file.txt"))


HOSTILE = ["x" * 300, "a/" * 3000, "/" + "x" * 300 + "/y", "a\x00b", "/etc/passwd\x00", "../" * 40,
           "~/.ssh", "/proc/self/environ", "日本語/モデル", "💥" * 200, "gpt2\n--help", "%00", "/dev/zero"]


@pytest.mark.parametrize("spec", HOSTILE)
def test_no_spec_raises_anything_but_a_model_load_error(spec):
    for any_folder in (True, False):
        with pytest.raises(ModelLoadError):
            load_model(spec, any_folder=any_folder)


def test_links_open_folders_only_under_the_roots_with_one_message(tiny_model_dir, tmp_path, monkeypatch):
    inside = tiny_model_dir("gpt2")
    monkeypatch.setenv(loading.ROOTS_ENV, str(inside))
    assert load_model(str(inside), any_folder=False).cfg.arch == "gpt2"
    outside = tmp_path / "other-checkout-model"
    shutil.copytree(inside, outside)
    messages = set()
    for spec in [str(outside), str(tmp_path), str(tmp_path / "missing"), "/etc", "/etc/passwd", "~/.ssh",
                 "~/nonexistent", f"{inside}/../{outside.name}", f"{inside}/..", "./", "x" * 300, "a\x00b"]:
        with pytest.raises(ModelLoadError) as err:
            resolve_spec(spec, any_folder=False)
        messages.add(str(err.value))
    assert messages == {LINK_REFUSED}  # the same words whether or not the path exists
    assert load_model(str(outside)).cfg.arch == "gpt2"  # typed at the machine, any folder is fine


def test_the_hub_cache_is_a_root_for_links(hub_cache, tiny_model_dir, monkeypatch):
    monkeypatch.delenv(loading.ROOTS_ENV, raising=False)
    snapshot = fake_hub_cache(hub_cache, "org/tiny", tiny_model_dir("gpt2"))
    assert resolve_spec(str(snapshot), any_folder=False).kind == "folder"
    assert resolve_spec("org/tiny", any_folder=False).kind == "hub"


def test_a_link_with_a_hub_shaped_name_never_opens_a_local_folder(tiny_model_dir, monkeypatch):
    folder = tiny_model_dir("gpt2")
    monkeypatch.chdir(folder.parent)
    assert resolve_spec(folder.name, any_folder=False).kind == "hub"
    assert resolve_spec(folder.name, any_folder=True).kind == "folder"  # like transformers, at the machine
    with pytest.raises(ModelLoadError, match="not on this machine"):
        load_model(folder.name, any_folder=False)


def test_a_download_checks_the_budget_before_fetching_weights(hub_cache, tiny_model_dir, monkeypatch):
    """The hub path, with the hub replaced by a copy from a local folder: config first, then the rest."""
    import huggingface_hub

    monkeypatch.setattr(catalog, "hub_reachable", lambda **k: True)
    source = tiny_model_dir("gpt2")
    fetched = []

    def config_only(repo_id, filename, **kwargs):
        fetched.append(filename)
        return str(fake_hub_cache(hub_cache, repo_id, source, skip=tuple(
            f.name for f in source.iterdir() if f.name != filename)) / filename)

    def everything(repo_id, **kwargs):
        fetched.append(tuple(kwargs["allow_patterns"]))
        return str(fake_hub_cache(hub_cache, repo_id, source))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", config_only)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", everything)
    monkeypatch.setattr(huggingface_hub, "list_repo_files",
                        lambda repo_id: ["config.json", "model.safetensors"])
    with pytest.raises(ModelLoadError, match="budget"):
        load_model("org/downloaded", max_params=1_000)
    assert fetched == ["config.json"]  # the weights were never asked for
    lm = load_model("org/downloaded")
    assert lm.cfg.arch == "gpt2" and fetched[-1] == (*loading._META_PATTERNS, "*.safetensors")
    assert catalog.cached_model_ids() == ["org/downloaded"]


def test_unexpected_errors_inside_loading_become_a_model_load_error(tiny_model_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(loading, "count_params_from_config", broken)
    with pytest.raises(ModelLoadError, match="KeyError"):
        load_model(str(tiny_model_dir("gpt2")))


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a model"):
        load_model(str(tmp_path))


def test_a_model_over_the_parameter_budget_is_refused_before_loading(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="budget"):
        load_model(str(tiny_model_dir("gpt2")), max_params=1_000)


def test_an_unsupported_architecture_names_the_supported_ones(tmp_path):
    BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="GPT-2.*Pythia"):
        load_model(str(tmp_path))


def test_a_corrupted_checkpoint_is_reported(tiny_model_dir, tmp_path):
    source = tiny_model_dir("gpt2")
    for f in source.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(ModelLoadError, match="Could not read the weights"):
        load_model(str(tmp_path))


def test_a_missing_bundled_model_says_how_to_rebuild_it(monkeypatch, tmp_path):
    monkeypatch.setattr(loading, "BUNDLED_DIR", tmp_path)
    with pytest.raises(ModelLoadError, match="python -m core.bundled.train"):
        load_model()


def test_remote_code_is_never_run(tmp_path, tiny_model_dir):
    source = tiny_model_dir("gpt2")
    for f in source.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    lm = load_model(str(tmp_path))  # loads the plain GPT-2 class; evil.py is never imported
    assert lm.cfg.arch == "gpt2"


def test_empty_prompt_asks_for_one(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    for text in ["", "   ", "\n\t"]:
        with pytest.raises(EmptyPromptError, match="empty"):
            lm.prepare_prompt(text)


def test_over_long_prompt_is_truncated_with_a_count(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    prompt = lm.prepare_prompt(" ".join(["cat"] * 100))
    assert prompt.tokens.shape == (1, lm.cfg.n_ctx)
    assert prompt.n_dropped == 101 - lm.cfg.n_ctx and prompt.truncated


def test_unknown_words_are_named(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    prompt = lm.prepare_prompt("the cat 👋 sat on the zebra")
    assert prompt.unknown == ["👋", "zebra"]


@pytest.fixture(scope="module")
def byte_level_lm(tmp_path_factory):
    """A tiny GPT-2 with a byte-level BPE tokenizer (like GPT-2's): any unicode text is encodable."""
    folder = tmp_path_factory.mktemp("bytelevel")
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(["the cat sat on the mat", "héllo wörld", "a dog ran home"], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>")
    tok.save_pretrained(folder)
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=64,
                               vocab_size=raw.get_vocab_size(), bos_token_id=0,
                               eos_token_id=0)).save_pretrained(folder)
    return load_model(str(folder))


def test_unicode_and_emoji_are_tokenized_as_the_model_does(byte_level_lm):
    text = "héllo 👋 wörld — 日本"
    prompt = byte_level_lm.prepare_prompt(text)
    assert prompt.unknown == []
    assert byte_level_lm.to_string(prompt.tokens[0, 1:]) == text
    assert prompt.tokens[0, 0].item() == byte_level_lm.tokenizer.bos_token_id
    assert torch.isfinite(byte_level_lm(prompt.tokens)).all()
