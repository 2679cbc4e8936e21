"""Loading and prompt handling: every bad input gets a clear message, never a crash."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import BertConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from core.models import EmptyPromptError, ModelLoadError, load_model, loading


def test_unknown_hub_id_without_network_says_so():
    with pytest.raises(ModelLoadError, match="not reachable|local cache"):
        load_model("no-such-org/no-such-model-xyz")


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
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
