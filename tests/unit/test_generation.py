"""core.models.generation: greedy text equals Hugging Face `generate`'s on every family (the oracle),
sampling draws from the softmax it claims, rows of a batch are independent of each other, rows that
share a seed share their random numbers, and end-of-text and the context window stop a row."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from core.models import act_name, load_model
from core.models.generation import (
    SamplingSettings,
    _Noise,
    cut_at_eos,
    generate,
    generate_batch,
    pick_next,
)
from core.models.loading import BUNDLED_DIR

TEXT = "the cat sat on the mat . Mary"
FAMILIES = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")
needs_bundled = pytest.mark.skipif(
    not (BUNDLED_DIR / "model.safetensors").is_file(),
    reason="the bundled checkpoint is not built yet (python -m core.bundled.train)")


def _hf_greedy(folder, tokens: torch.Tensor, n_new: int) -> list[int]:
    """The peer: a plain transformers model (its default attention), `generate` greedy, no early stop
    (no end-of-text token configured: min_new_tokens would instead forbid that token, which is no
    longer plain greedy)."""
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    model.generation_config.eos_token_id = None
    out = model.generate(tokens, attention_mask=torch.ones_like(tokens), max_new_tokens=n_new,
                         do_sample=False, pad_token_id=model.config.pad_token_id)
    return out[0, tokens.shape[1]:].tolist()


@pytest.mark.parametrize("arch", FAMILIES)
def test_greedy_generation_equals_hugging_face_generate(tiny_model_dir, arch):
    folder = tiny_model_dir(arch)
    lm = load_model(str(folder))
    tokens = lm.to_tokens(TEXT)
    n_new = lm.cfg.n_ctx - tokens.shape[1]  # up to the end of the context window
    ours = generate(lm, tokens, max_new_tokens=n_new, temperature=0, stop_at_eos=False)
    assert ours.new_tokens.tolist() == _hf_greedy(folder, tokens, n_new)


@needs_bundled
def test_greedy_generation_equals_hugging_face_generate_on_the_bundled_model():
    lm = load_model()
    for prompt in ("One day, Mary went to the park. She was", "The capital of France is", "2 + 3 ="):
        tokens = lm.to_tokens(prompt)
        ours = generate(lm, tokens, max_new_tokens=40, temperature=0, stop_at_eos=False)
        assert ours.new_tokens.tolist() == _hf_greedy(BUNDLED_DIR, tokens, 40), prompt


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def test_sampling_draws_from_the_tempered_softmax():
    """The exponential race picks token i with probability softmax(logits / T)_i (top-k: among the
    k largest, renormalised); 20,000 seeded draws land within 1.5 points of it."""
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    n = 20_000
    for settings in (SamplingSettings(temperature=1.0), SamplingSettings(temperature=0.5),
                     SamplingSettings(temperature=2.0, top_k=3)):
        g = torch.Generator().manual_seed(0)
        draws = torch.cat([pick_next(logits, settings, g) for _ in range(n)])
        freq = torch.bincount(draws, minlength=5).float() / n
        scaled = logits[0] / settings.temperature
        if settings.top_k:
            scaled[torch.argsort(scaled, descending=True)[settings.top_k:]] = -math.inf
        np.testing.assert_allclose(freq.numpy(), scaled.softmax(-1).numpy(), atol=0.015)
    assert pick_next(logits, SamplingSettings(temperature=0), g).tolist() == [0]  # greedy


def test_rows_that_share_a_seed_share_their_random_numbers():
    noise = _Noise([5, 5, 7])
    draw = noise.draw(10)  # [3, 10]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])
    alone = _Noise([7]).draw(10)  # a row's numbers do not depend on the other rows
    assert torch.equal(draw[2], alone)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_row_writes_the_same_text_alone_or_in_a_batch(lm, temperature):
    tokens = lm.to_tokens(TEXT)
    settings = SamplingSettings(max_new_tokens=12, temperature=temperature, seed=3, stop_at_eos=False)
    alone = generate(lm, tokens, settings)
    batch = generate_batch(lm, tokens.repeat(3, 1), settings, seeds=[3, 9, 3])
    assert batch.tokens.shape == (3, tokens.shape[1] + 12)
    assert batch.row(0).tolist() == alone.new_tokens.tolist() == batch.row(2).tolist()
    if temperature > 0:  # another seed, another text; the same seed again, the same one
        assert batch.row(1).tolist() != batch.row(0).tolist()
        again = generate_batch(lm, tokens, settings, seeds=[9])
        assert again.row(0).tolist() == batch.row(1).tolist()


def test_greedy_batched_generation_equals_full_recompute_under_a_hook(lm):
    """With the KV cache each step feeds one token; hooks see it at its absolute position. A hook that
    adds a position-dependent push gives the same tokens as recomputing the whole sequence."""
    name = act_name("resid_post", 0)
    push = torch.randn(lm.cfg.d_model, generator=torch.Generator().manual_seed(0))

    def hook(act, point):  # [batch, pos, d_model]; the push grows with the absolute position
        pos = point.positions(act.shape[1]).float()[None, :, None]
        return act + 0.3 * pos * push

    tokens = lm.to_tokens(TEXT).repeat(2, 1)
    with lm.hooks([(name, hook)]):
        out = generate_batch(lm, tokens, SamplingSettings(max_new_tokens=10, temperature=0,
                                                          stop_at_eos=False))
        full = tokens
        for _ in range(10):
            full = torch.cat([full, lm(full)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert out.tokens.tolist() == full.tolist()
    plain = generate_batch(lm, tokens, SamplingSettings(max_new_tokens=10, temperature=0,
                                                        stop_at_eos=False))
    assert plain.tokens.tolist() != out.tokens.tolist()  # the hook did something


class _ScriptedModel(torch.nn.Module):
    """A stand-in for a transformers model whose next-token logits follow a script per row."""

    def __init__(self, script: list[list[int]], vocab: int = 8):
        super().__init__()
        self.config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=vocab, n_positions=64)
        self.script, self.vocab, self.step = script, vocab, 0

    def forward(self, input_ids, past_key_values=None, use_cache=True, position_ids=None,
                logits_to_keep=0):
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab)
        for row, ids in enumerate(self.script):
            logits[row, 0, ids[min(self.step, len(ids) - 1)]] = 10.0
        self.step += 1
        return SimpleNamespace(logits=logits)


def _scripted_lm(script, eos=0, n_ctx=64):
    dispatch = SimpleNamespace(current=lambda: None)
    return SimpleNamespace(model=_ScriptedModel(script), cfg=SimpleNamespace(n_ctx=n_ctx),
                           tokenizer=SimpleNamespace(eos_token_id=eos, decode=lambda ids, **kw: str(ids)),
                           _dispatch=dispatch, to_tokens=None)


def test_rows_stop_at_end_of_text_and_are_padded():
    lm = _scripted_lm([[3, 4, 0, 5], [3, 3, 3, 3, 3, 0], [4, 4, 4, 4, 4, 4, 4, 4]])
    out = generate_batch(lm, torch.ones(3, 2, dtype=torch.long),
                         SamplingSettings(max_new_tokens=6, temperature=0))
    assert out.lengths.tolist() == [3, 6, 6]  # the end-of-text token counts; the last row never ends
    assert out.row(0).tolist() == [3, 4, 0]
    assert out.new_tokens[0].tolist() == [3, 4, 0, 0, 0, 0]  # padded with end-of-text after it
    assert out.row(1).tolist() == [3, 3, 3, 3, 3, 0]
    lm = _scripted_lm([[3, 0], [0]])
    out = generate_batch(lm, torch.ones(2, 2, dtype=torch.long), SamplingSettings(max_new_tokens=6))
    assert out.tokens.shape[1] == 2 + 2 and out.lengths.tolist() == [2, 1]  # every row ended: stop
    lm = _scripted_lm([[3, 0], [0]])
    out = generate_batch(lm, torch.ones(2, 2, dtype=torch.long),
                         SamplingSettings(max_new_tokens=6, temperature=0, stop_at_eos=False))
    assert out.lengths.tolist() == [6, 6]


def test_generation_stops_at_the_context_window():
    lm = _scripted_lm([[3]], n_ctx=5)
    out = generate_batch(lm, torch.ones(1, 3, dtype=torch.long), SamplingSettings(max_new_tokens=10))
    assert out.tokens.shape == (1, 5) and out.lengths.tolist() == [2]
    lm = _scripted_lm([[3]], n_ctx=3)
    out = generate_batch(lm, torch.ones(1, 3, dtype=torch.long), SamplingSettings(max_new_tokens=10))
    assert out.tokens.shape == (1, 3) and out.lengths.tolist() == [0]


@pytest.mark.parametrize("bad", [dict(temperature=float("nan")), dict(temperature=-1.0),
                                 dict(temperature=float("inf")), dict(max_new_tokens=-1),
                                 dict(top_k=-3)])
def test_settings_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        SamplingSettings(**bad)


def test_generate_accepts_keywords_or_settings_and_restores_the_hook_position(lm):
    a = generate(lm, TEXT, max_new_tokens=6, seed=2, stop_at_eos=False)
    b = generate(lm, TEXT, SamplingSettings(max_new_tokens=6, seed=2, stop_at_eos=False))
    assert a.new_tokens.tolist() == b.new_tokens.tolist() and len(a.new_tokens) == 6
    assert a.new_text == lm.tokenizer.decode(a.new_tokens.tolist(), skip_special_tokens=True)
    seen = []
    with lm.hooks([(act_name("resid_post", 0), lambda act, point: seen.append(point.pos_offset))]):
        generate(lm, TEXT, max_new_tokens=3, stop_at_eos=False)
        lm(lm.to_tokens(TEXT))  # a plain pass after generation starts at position 0 again
    n = lm.to_tokens(TEXT).shape[1]
    assert seen == [0, n, n + 1, 0]
    with pytest.raises(ValueError, match="seeds"):
        generate_batch(lm, lm.to_tokens(TEXT), seeds=[1, 2])
    with pytest.raises(TypeError, match="not both"):
        generate(lm, TEXT, SamplingSettings(), seed=3)


# -- cutting rows written to full length (a backend whose decoding cannot stop rows one by one) -------
def test_rows_end_at_their_first_end_of_text_like_generate_batch():
    prompt = torch.ones(3, 2, dtype=torch.long)
    new = torch.tensor([[3, 4, 0, 5, 6, 7], [3, 3, 3, 3, 3, 0], [4, 4, 4, 4, 4, 4]])
    out = cut_at_eos(torch.cat([prompt, new], 1), 2, eos=0)
    assert out.lengths.tolist() == [3, 6, 6]
    assert out.new_tokens[0].tolist() == [3, 4, 0, 0, 0, 0] and out.row(0).tolist() == [3, 4, 0]
    out = cut_at_eos(torch.cat([prompt[:2], torch.tensor([[3, 0, 5, 6], [0, 1, 2, 3]])], 1), 2, eos=0)
    assert out.tokens.shape[1] == 2 + 2 and out.lengths.tolist() == [2, 1]  # every row ended: cut there
    out = cut_at_eos(torch.cat([prompt[:2], torch.tensor([[3, 0, 5, 6], [0, 1, 2, 3]])], 1), 2, eos=None)
    assert out.lengths.tolist() == [4, 4] and out.tokens.shape[1] == 6


def test_cutting_full_length_rows_gives_what_stopping_wrote(tiny_lm):
    lm = tiny_lm("gpt2")  # random weights: end-of-text comes up now and then
    tokens = lm.to_tokens("the cat").repeat(8, 1)
    seeds = list(range(8))
    stopped = generate_batch(lm, tokens, SamplingSettings(max_new_tokens=40, temperature=1.5), seeds=seeds)
    full = generate_batch(lm, tokens, SamplingSettings(max_new_tokens=40, temperature=1.5, stop_at_eos=False),
                          seeds=seeds)
    cut = cut_at_eos(full.tokens, full.n_prompt, lm.tokenizer.eos_token_id)
    assert (stopped.lengths < 40).any()  # some row did end early, so the cut had work to do
    assert torch.equal(cut.lengths, stopped.lengths)
    assert torch.equal(cut.tokens, stopped.tokens)
