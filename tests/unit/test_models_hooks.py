"""Hook lifetime, thread isolation, generation with the KV cache, and private copies."""

from __future__ import annotations

import threading

import pytest
import torch

from core.models import act_name, load_model

TEXT = "the cat sat on the mat . Mary gave a red dog to John"


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def _push(vector):
    return lambda act, hook: act + vector


def _random_direction(d_model: int, scale: float) -> torch.Tensor:
    # Not a constant vector: LayerNorm subtracts the mean, so adding c * ones would change nothing.
    return scale * torch.randn(d_model, generator=torch.Generator().manual_seed(0))


def test_hooks_are_gone_after_the_block(lm):
    tokens = lm.to_tokens(TEXT)
    clean = lm(tokens)
    with lm.hooks([(act_name("resid_pre", 1), _push(_random_direction(lm.cfg.d_model, 5.0)))]):
        assert (lm(tokens) - clean).abs().max() > 1e-2
    torch.testing.assert_close(lm(tokens), clean, atol=0, rtol=0)


def test_hooks_are_gone_after_an_exception(lm):
    tokens = lm.to_tokens(TEXT)
    clean = lm(tokens)
    with pytest.raises(RuntimeError, match="boom"):
        with lm.hooks([(act_name("resid_pre", 1), _push(_random_direction(lm.cfg.d_model, 5.0)))]):
            raise RuntimeError("boom")
    torch.testing.assert_close(lm(tokens), clean, atol=0, rtol=0)


def test_a_hook_that_raises_leaves_nothing_behind(lm):
    tokens = lm.to_tokens(TEXT)
    clean = lm(tokens)

    def broken(act, hook):
        raise ValueError("bad hook")

    with pytest.raises(ValueError, match="bad hook"):
        with lm.hooks([(act_name("mlp_out", 0), broken)]):
            lm(tokens)
    torch.testing.assert_close(lm(tokens), clean, atol=0, rtol=0)


def test_nested_hook_blocks_stack_and_unwind(lm):
    tokens = lm.to_tokens(TEXT)
    seen = []
    with lm.hooks([(act_name("resid_pre", 0), lambda a, h: seen.append("outer"))]):
        with lm.hooks([(act_name("resid_pre", 0), lambda a, h: seen.append("inner"))]):
            lm(tokens)
        lm(tokens)
    assert seen == ["outer", "inner", "outer"]


def test_unknown_hook_names_are_refused_with_a_hint(lm):
    with pytest.raises(ValueError, match="act_name"):
        with lm.hooks([("blocks.0.hook_resid_typo", lambda a, h: a)]):
            pass


def test_hook_returning_wrong_shape_is_reported(lm):
    with pytest.raises(ValueError, match="shape"):
        with lm.hooks([(act_name("resid_pre", 0), lambda a, h: a[:, :1])]):
            lm(lm.to_tokens(TEXT))


def test_run_with_cache_honours_name_filters(lm):
    tokens = lm.to_tokens(TEXT)
    _, cache = lm.run_with_cache(tokens, names=[act_name("pattern", 1)])
    assert list(cache) == [act_name("pattern", 1)]
    _, cache = lm.run_with_cache(tokens, names=lambda n: n.endswith("resid_post"))
    assert cache.stack("resid_post").shape == (lm.cfg.n_layers, 1, tokens.shape[1], lm.cfg.d_model)


def test_steering_in_one_thread_never_reaches_another(lm):
    """A steered loop and a clean loop run at the same time; every clean result is the reference."""
    tokens = lm.to_tokens(TEXT)
    reference = lm(tokens)
    push = _push(_random_direction(lm.cfg.d_model, 3.0))
    stop = threading.Event()
    steered_differs, clean_ok, errors = [], [], []

    def steer():
        try:
            while not stop.is_set():
                with lm.hooks([(act_name("resid_pre", 1), push)]):
                    steered_differs.append(bool((lm(tokens) - reference).abs().max() > 1e-2))
        except Exception as err:  # surfaced below
            errors.append(err)

    def clean():
        try:
            for _ in range(150):
                clean_ok.append(bool(torch.equal(lm(tokens), reference)))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=steer), threading.Thread(target=clean)]
    threads[0].start()
    threads[1].start()
    threads[1].join()
    stop.set()
    threads[0].join()
    assert not errors
    assert len(clean_ok) == 150 and all(clean_ok)
    assert steered_differs and all(steered_differs)


def test_greedy_generation_with_kv_cache_matches_full_recompute(lm):
    result = lm.generate(TEXT, max_new_tokens=8, temperature=0, stop_at_eos=False)
    tokens = lm.to_tokens(TEXT)
    for _ in range(8):
        next_id = lm(tokens)[0, -1].argmax()
        tokens = torch.cat([tokens, next_id.view(1, 1)], dim=1)
    assert result.tokens.tolist() == tokens[0].tolist()


def test_generation_is_seeded_and_honours_hooks(lm):
    a = lm.generate(TEXT, max_new_tokens=6, seed=3, stop_at_eos=False)
    b = lm.generate(TEXT, max_new_tokens=6, seed=3, stop_at_eos=False)
    assert a.new_tokens.tolist() == b.new_tokens.tolist()
    offsets = []

    def record(act, hook):
        offsets.append((hook.pos_offset, act.shape[1]))
        return act + 50.0 * torch.randn(lm.cfg.d_model, generator=torch.Generator().manual_seed(0))

    greedy = lm.generate(TEXT, max_new_tokens=6, temperature=0, stop_at_eos=False)
    with lm.hooks([(act_name("resid_pre", 1), record)]):
        steered = lm.generate(TEXT, max_new_tokens=6, temperature=0, stop_at_eos=False)
    n_prompt = lm.to_tokens(TEXT).shape[1]
    assert offsets[0] == (0, n_prompt)  # first step sees the whole prompt
    assert offsets[1:] == [(n_prompt + i, 1) for i in range(5)]  # then one new token at a time
    assert steered.new_tokens.tolist() != greedy.new_tokens.tolist()


def test_generation_stops_at_the_context_window(lm):
    long_text = " ".join(["the cat"] * (lm.cfg.n_ctx // 2 - 2))
    result = lm.generate(long_text, max_new_tokens=50, stop_at_eos=False)
    assert result.tokens.shape[0] == lm.cfg.n_ctx


def test_copy_is_independent_of_the_shared_model(lm):
    tokens = lm.to_tokens(TEXT)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    private = lm.copy(trainable=True)
    with torch.no_grad():
        next(private.model.parameters()).add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert not any(p.requires_grad for p in lm.model.parameters())
    assert all(p.requires_grad for p in private.model.parameters())
    seen = []
    with private.hooks([(act_name("resid_pre", 0), lambda a, h: seen.append("copy"))]):
        lm(tokens)  # the shared model must not fire the copy's hooks
    assert seen == []
    with private.hooks([(act_name("resid_pre", 0), lambda a, h: seen.append("copy"))]):
        private(tokens)
    assert seen == ["copy"]


def test_stop_at_layer_records_early_layers_exactly_and_skips_the_rest(lm):
    tokens = lm.to_tokens(TEXT)
    clean = lm(tokens)
    _, full = lm.run_with_cache(tokens, names=lambda n: "resid" in n)
    logits, early = lm.run_with_cache(tokens, names=lambda n: "resid" in n, stop_at_layer=1)
    assert logits is None
    assert set(early) == {act_name("resid_pre", 0), act_name("resid_mid", 0), act_name("resid_post", 0)}
    for name, act in early.items():
        torch.testing.assert_close(act, full[name], atol=0, rtol=0)
    torch.testing.assert_close(lm(tokens), clean, atol=0, rtol=0)  # the stop left nothing behind


def test_next_token_logits_match_one_forward_pass_per_text(lm):
    texts = ["the cat sat", "Mary gave a red dog to John and", "the"]
    batched = lm.next_token_logits(texts, batch_size=2)
    for row, text in zip(batched, texts, strict=True):
        torch.testing.assert_close(row, lm(lm.to_tokens(text))[0, -1], atol=1e-5, rtol=0)


def test_single_token_ids_and_context_window_cuts(lm):
    assert lm.single_token_id("cat") == lm.to_tokens("cat", prepend_bos=False)[0, 0].item()
    assert lm.single_token_id("cat sat") is None  # two tokens
    assert lm.single_token_id("zebra") is None  # unknown word
    tokens, lengths = lm.tokenize_batch(["cat " * 100, "cat"])
    assert tokens.shape == (2, lm.cfg.n_ctx) and lengths.tolist() == [lm.cfg.n_ctx, 2]
    assert torch.isfinite(lm(tokens)).all()  # an over-long row no longer overflows the positions


def test_malloc_is_tuned_once_where_the_c_library_allows_it():
    import platform

    from core.models.hooked_lm import keep_freed_memory_for_reuse

    first = keep_freed_memory_for_reuse()
    assert keep_freed_memory_for_reuse() is first  # once per process
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first is True
