"""The nnsight backend run locally (remote=False) against HookedLM, on the tiny model of every family:
cached activations, hooked writes, steered generation, loss, the logit lens, head projections and
attribution patching must equal HookedLM's to 1e-5 (generation: the same tokens). Also: what it
refuses and how it says so, its request log, thread safety, and that importing nnsight leaves no
`.save` on every object."""

from __future__ import annotations

import threading

import pytest
import torch

from core.models import load_model
from core.models import remote as rm
from core.models.backend import (
    ModelBackend,
    Write,
    attribution_scores,
    head_projections,
    is_remote,
    lens_logits,
    missing_members,
    read_at,
    readout_weights,
    write_into,
)
from core.models.generation import SamplingSettings, generate_batch
from core.models.hook_names import act_name, stream_hook

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")
ATOL = 1e-5
TOKENS = torch.tensor([[0, 3, 4, 5, 6, 7, 8], [0, 9, 15, 10, 12, 11, 4]])


@pytest.fixture(scope="module", params=ARCHS)
def pair(request, tiny_model_dir):
    from core.models.nnsight_backend import NNsightLM

    folder = tiny_model_dir(request.param)
    return load_model(str(folder)), NNsightLM.local(folder)


@pytest.fixture(scope="module")
def gpt2_pair(tiny_model_dir):
    from core.models.nnsight_backend import NNsightLM

    folder = tiny_model_dir("gpt2")
    return load_model(str(folder)), NNsightLM.local(folder)


def close(a, b, atol=ATOL):
    torch.testing.assert_close(a.float(), b.float(), atol=atol, rtol=0)


# -- parity with HookedLM, every family -------------------------------------------------------------
def test_both_backends_satisfy_the_interface(pair):
    hooked, nn = pair
    assert isinstance(nn, ModelBackend) and missing_members(nn) == []
    # HookedLM lacks at most the two small additions the lead applies (is_remote, generate_batch)
    assert set(missing_members(hooked)) <= {"is_remote", "generate_batch"}
    assert nn.cfg == hooked.cfg and not is_remote(nn) and not is_remote(hooked)


def test_cached_activations_equal_hooked_lm(pair):
    hooked, nn = pair
    names = nn.hook_names()
    assert set(names) <= set(hooked.hook_names())
    assert not any(n.endswith(("hook_q", "hook_k", "hook_v", "hook_attn_scores")) for n in names)
    ref_logits, ref = hooked.run_with_cache(TOKENS, names=names)
    logits, cache = nn.run_with_cache(TOKENS, names=names)
    close(logits, ref_logits)
    for n in names:
        assert cache[n].shape == ref[n].shape, n
        close(cache[n], ref[n])
    assert cache.stack("resid_post").shape == (nn.cfg.n_layers, *TOKENS.shape, nn.cfg.d_model)


def test_hooked_writes_equal_hooked_lm(pair):
    hooked, nn = pair
    d = nn.cfg.d_model
    writes = [
        Write(stream_hook(0), torch.linspace(-3, 3, d), start_pos=3),  # steering from position 3 on
        Write(act_name("z", 1), torch.zeros(nn.cfg.d_head), mode="set", head=2),  # ablate head 1.2
        Write(act_name("mlp_out", 0), torch.full((d,), 0.5), positions=(1, 4)),
        Write(stream_hook(-1), torch.randn(2, 1, d)),  # one vector per row, into the embeddings
    ]
    names = [stream_hook(1), act_name("z", 1), act_name("pattern", 1), "ln_final.hook_normalized"]
    with hooked.hooks([(w.name, w) for w in writes]):
        ref_logits, ref = hooked.run_with_cache(TOKENS, names=names)
        ref_loss = hooked.loss(TOKENS, per_token=True)
    with nn.hooks(writes):
        logits, cache = nn.run_with_cache(TOKENS, names=names)
        loss = nn.loss(TOKENS, per_token=True)
    close(logits, ref_logits)
    close(loss, ref_loss)
    for n in names:
        close(cache[n], ref[n])
    assert float(cache[act_name("z", 1)][:, :, 2].abs().max()) == 0.0
    _, clean = nn.run_with_cache(TOKENS, names=names)  # the writes ended with the block
    assert not torch.allclose(clean[stream_hook(1)], cache[stream_hook(1)])


@pytest.mark.parametrize("settings", [SamplingSettings(max_new_tokens=6, temperature=0),
                                      SamplingSettings(max_new_tokens=6, temperature=1.0, top_k=8, seed=3)],
                         ids=["greedy", "sampled"])
def test_steered_generation_equals_hooked_lm(pair, settings):
    hooked, nn = pair
    push = Write(stream_hook(0), 3 * torch.linspace(-1, 1, nn.cfg.d_model), start_pos=9)  # 3rd new token on
    with hooked.hooks([(push.name, push)]):
        ref = generate_batch(hooked, TOKENS, settings, seeds=[4, 4])
    with nn.hooks([push]):
        got = nn.generate_batch(TOKENS, settings, seeds=[4, 4])
    assert torch.equal(got.tokens, ref.tokens) and torch.equal(got.lengths, ref.lengths)
    unsteered = nn.generate_batch(TOKENS, settings, seeds=[4, 4])
    assert torch.equal(unsteered.tokens[:, :10], got.tokens[:, :10])  # position 9's push writes position 10
    assert not torch.equal(unsteered.tokens, got.tokens)  # ... and changes the text from there


def test_patching_results_equal_hooked_lm(pair):
    hooked, nn = pair
    corrupt = TOKENS.clone()
    corrupt[:, 2] = 20
    right, wrong = [5, 6], [7, 8]
    names = [act_name("resid_pre", 0), act_name("z", 0), act_name("attn_out", 1), act_name("mlp_out", 1),
             stream_hook(1)]
    for direction in ("denoise", "noise"):
        ref = attribution_scores(hooked, TOKENS, corrupt, names, right, wrong, direction=direction)
        got = attribution_scores(nn, TOKENS, corrupt, names, right, wrong, direction=direction)
        close(got.clean_metric, ref.clean_metric)
        close(got.corrupt_metric, ref.corrupt_metric)
        for n in names:
            assert got.estimates[n].shape == ref.estimates[n].shape
            close(got.estimates[n], ref.estimates[n])
        assert float(got.estimates[act_name("z", 0)].abs().sum()) > 0
    # an exact patch: the clean stream after layer 0 written into the corrupted run, at position 2
    _, clean_cache = hooked.run_with_cache(TOKENS, names=[stream_hook(0)])
    patch = Write(stream_hook(0), clean_cache[stream_hook(0)][:, 2:3], mode="set", positions=(2,))
    with hooked.hooks([(patch.name, patch)]):
        ref_logits = hooked(corrupt)
    with nn.hooks([patch]):
        logits = nn.logits_at(corrupt, torch.tensor([6, 6]), torch.tensor([[5, 7], [6, 8]]))
    close(logits, ref_logits[:, 6].gather(-1, torch.tensor([[5, 7], [6, 8]])))


def test_narrow_reads_equal_hooked_lm(pair):
    hooked, nn = pair
    names = [stream_hook(1), act_name("pattern", 0), act_name("post", 1)]
    positions = torch.tensor([3, 6])
    ref, got = read_at(hooked, TOKENS, names, positions), read_at(nn, TOKENS, names, positions)
    for n in names:
        close(got[n], ref[n])
    assert got[act_name("pattern", 0)].shape == (2, nn.cfg.n_heads, TOKENS.shape[1])
    layers = [-1, 0, 1]
    ref_lens, lens = lens_logits(hooked, TOKENS, layers, top_k=4), lens_logits(nn, TOKENS, layers, top_k=4)
    assert torch.equal(lens.ids, ref_lens.ids) and lens.ids.shape == (3, 2, 4)
    close(lens.logits, ref_lens.logits)
    close(lens.log_probs, ref_lens.log_probs)
    ids = torch.tensor([5, 9])
    close(lens_logits(nn, TOKENS, layers, token_ids=ids).logits,
          lens_logits(hooked, TOKENS, layers, token_ids=ids).logits)
    vectors = torch.randn(2, nn.cfg.d_model)
    close(head_projections(nn, TOKENS, [1, 0], vectors, positions),
          head_projections(hooked, TOKENS, [1, 0], vectors, positions))
    got_w, ref_w = readout_weights(nn, [5, 9, 2]), readout_weights(hooked, [5, 9, 2])
    assert got_w.W_U.shape == (nn.cfg.d_model, 3)
    for field in ("W_U", "b_U", "ln_weight", "ln_bias", "b_O"):
        a, b = getattr(got_w, field), getattr(ref_w, field)
        assert (a is None) == (b is None), field
        if a is not None:
            close(a, b)


def test_loss_mask_next_token_logits_and_stop_at_layer(gpt2_pair):
    hooked, nn = gpt2_pair
    mask = torch.tensor([[0, 0, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1, 1]])
    close(nn.loss(TOKENS, mask=mask), hooked.loss(TOKENS, mask=mask))
    close(nn.loss(TOKENS), hooked.loss(TOKENS))
    texts = ["the cat sat", "Mary gave a dog to John ."]
    close(nn.next_token_logits(texts), hooked.next_token_logits(texts))
    logits, cache = nn.run_with_cache(TOKENS, names=None, stop_at_layer=1)
    ref_logits, ref = hooked.run_with_cache(TOKENS, names=nn.hook_names(), stop_at_layer=1)
    assert logits is None and ref_logits is None and set(cache) == set(ref)
    assert all(not n.startswith("blocks.1") for n in cache)


def test_generate_and_prompt_helpers_match(gpt2_pair):
    hooked, nn = gpt2_pair
    a = hooked.generate("the cat", max_new_tokens=5, temperature=0)
    b = nn.generate("the cat", max_new_tokens=5, temperature=0)
    assert torch.equal(a.tokens, b.tokens) and a.new_text == b.new_text
    assert nn.to_str_tokens("the cat") == hooked.to_str_tokens("the cat")
    assert torch.equal(nn.prepare_prompt("the cat sat").tokens, hooked.prepare_prompt("the cat sat").tokens)
    assert nn.single_token_id(" cat") == hooked.single_token_id(" cat")
    with pytest.raises(TypeError):
        nn.generate("the cat", SamplingSettings(), max_new_tokens=3)


def test_generation_stops_at_end_of_text_like_hooked_lm(gpt2_pair):
    hooked, nn = gpt2_pair
    eos = nn.tokenizer.eos_token_id
    # force end-of-text from position 9 on: the final norm's output there is set to point at it
    direction = hooked.W_U[:, eos].detach()
    force = Write("ln_final.hook_normalized", 50 * direction / direction.norm(), mode="set", start_pos=9)
    settings = SamplingSettings(max_new_tokens=6, temperature=0)
    rows = TOKENS[:1]
    with hooked.hooks([(force.name, force)]):
        ref = generate_batch(hooked, rows, settings)
    with nn.hooks([force]):
        got = nn.generate_batch(rows, settings)
    assert ref.lengths.tolist() == [4]  # position 9's logits write position 10: the 4th new token
    assert torch.equal(got.tokens, ref.tokens) and torch.equal(got.lengths, ref.lengths)


# -- writes ----------------------------------------------------------------------------------------
def test_write_into_adds_and_sets_only_where_asked():
    act = torch.zeros(2, 5, 3)
    out = write_into(act, "add", torch.tensor([1.0, 2.0, 3.0]), 2, None, None, 0)
    assert out[:, :2].abs().sum() == 0 and torch.equal(out[0, 2:], torch.tensor([[1.0, 2, 3]] * 3))
    assert act.abs().sum() == 0  # the input is not changed in place
    out = write_into(act, "set", torch.tensor(7.0), 0, torch.tensor([1, 3]), None, 0)
    assert out[:, [1, 3]].eq(7).all() and out[:, [0, 2, 4]].eq(0).all()
    assert write_into(act, "add", torch.ones(3), 10, None, None, 0) is None  # nothing selected
    step = write_into(torch.zeros(2, 1, 3), "add", torch.ones(3), 6, None, None, 6)  # generating: pos 6
    assert step.eq(1).all()
    heads = write_into(torch.ones(1, 2, 4, 3), "set", torch.zeros(3), 0, None, 2, 0)
    assert heads[:, :, 2].eq(0).all() and heads[:, :, [0, 1, 3]].eq(1).all()


def test_write_refuses_nonsense():
    with pytest.raises(ValueError, match="mode"):
        Write(stream_hook(0), torch.ones(3), mode="multiply")
    with pytest.raises(ValueError, match="per-head"):
        Write(stream_hook(0), torch.ones(3), head=1)
    assert Write(stream_hook(0), [1.0, 2.0]).value.dtype == torch.float32


# -- refusals ----------------------------------------------------------------------------------------
def test_unsupported_and_read_only_hook_points_are_explained(gpt2_pair):
    _, nn = gpt2_pair
    with pytest.raises(rm.NotRemotable, match="inside the attention function"):
        nn.run_with_cache(TOKENS, names=[act_name("q", 0)])
    with pytest.raises(rm.NotRemotable, match="read but not written"):
        with nn.hooks([Write(act_name("pattern", 0), torch.zeros(1))]):
            pass
    with pytest.raises(ValueError, match="Unknown hook point"):
        nn.run_with_cache(TOKENS, names=["blocks.9.hook_resid_post"])
    with pytest.raises(rm.NotRemotable, match="attribution_scores"):
        nn.forward(TOKENS, grad=True)
    with pytest.raises(ValueError, match="block's stream-shaped"):
        attribution_scores(nn, TOKENS, TOKENS, ["hook_embed"], [1, 1], [2, 2])


def test_python_hook_functions_work_on_a_local_nnsight_model(gpt2_pair):
    hooked, nn = gpt2_pair

    def double(act, hook):
        return act * 2

    with hooked.hooks([(stream_hook(0), double)]):
        ref = hooked(TOKENS)
    with nn.hooks([(stream_hook(0), double)]):
        close(nn(TOKENS), ref)


# -- log, threads, process-wide effects -----------------------------------------------------------------
def test_every_request_is_logged_with_prompts_and_bytes(gpt2_pair):
    hooked, nn = gpt2_pair
    log = rm.RequestLog()
    with rm.use_log(log):
        nn.run_with_cache(TOKENS, names=[stream_hook(0)])
        nn.loss(TOKENS)
    first, second = log.records()
    assert first.where == "this machine" and first.status == "ok" and first.asked == (stream_hook(0),)
    assert first.prompts == (hooked.to_string(TOKENS[0]), hooked.to_string(TOKENS[1]))
    logits_bytes = TOKENS.numel() * nn.cfg.d_vocab * 4
    assert first.bytes_received == logits_bytes + TOKENS.numel() * nn.cfg.d_model * 4
    assert second.kind == "loss" and second.bytes_received == 2 * 6 * 4  # [batch, pos - 1] float32
    assert first.seconds > 0


def test_a_steered_and_a_clean_request_in_two_threads_do_not_mix(gpt2_pair):
    _, nn = gpt2_pair
    clean_ref = nn(TOKENS)
    push = Write(stream_hook(0), torch.full((nn.cfg.d_model,), 5.0))
    with nn.hooks([push]):
        steered_ref = nn(TOKENS)
    results, errors = {}, []

    def clean():
        try:
            for _ in range(5):
                results.setdefault("clean", []).append(nn(TOKENS))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    def steered():
        try:
            with nn.hooks([push]):
                for _ in range(5):
                    results.setdefault("steered", []).append(nn(TOKENS))
        except Exception as err:  # pragma: no cover
            errors.append(err)

    threads = [threading.Thread(target=clean), threading.Thread(target=steered)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(torch.equal(x, clean_ref) for x in results["clean"])
    assert all(torch.equal(x, steered_ref) for x in results["steered"])


def test_importing_the_backend_leaves_no_save_method_on_every_object():
    import core.models.nnsight_backend  # noqa: F401

    assert not hasattr(object(), "save")
    assert not hasattr(3, "save")
