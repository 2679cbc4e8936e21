"""The batched patching engine against a naive loop of one patched forward pass per patch, on the bundled
model and on every architecture family; and the invariants (clean into clean, the final stream)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.patching.engine import PatchEngine, Site, hook_kind
from core.interp.patching.sweeps import DIRECTIONS, SWEEPS, run_sweep, sweep_patches
from core.interp.patching.tasks import build_task, induction_task
from core.models import act_name, load_model
from core.models.hook_names import stream_hook

TOL = 1e-4  # float32 logits of order 10: batched and one-by-one runs agree to a few 1e-6
ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")


@pytest.fixture(scope="module")
def bundled():
    return load_model()


def naive_metric(lm, task, target: str, source_cache: dict, patch) -> np.ndarray:
    """One full forward pass with every site of `patch` overwritten; the metric from the full logits."""
    tokens = task.clean if target == "clean" else task.corrupt

    def writer(site):
        src = source_cache[site.hook]

        def fn(act, hook):
            act = act.clone()
            pos = slice(None) if site.pos is None else site.pos
            head = slice(None) if site.head is None else site.head
            kind = hook_kind(site.hook)
            if kind == "stream":
                act[:, pos] = src[:, pos]
            elif kind in ("head", "key"):
                act[:, pos, head] = src[:, pos, head]
            else:
                act[:, head, pos] = src[:, head, pos]
            return act
        return fn

    with torch.no_grad(), lm.hooks([(site.hook, writer(site)) for site in patch]):
        logits = lm(tokens)[:, -1]  # [batch, d_vocab]
    right, wrong = task.answers[:, 0], task.answers[:, 1]
    rows = torch.arange(len(right))
    return (logits[rows, right] - logits[rows, wrong]).numpy()


def check_sweep(lm, task, kind: str, direction: str, every: int = 1) -> None:
    engine = PatchEngine(lm, task)
    source, target = DIRECTIONS[direction]
    result = run_sweep(engine, kind, direction)
    grid = sweep_patches(kind, lm.cfg.n_layers, lm.cfg.n_heads, task.n_pos)[0]
    for p, panel in enumerate(grid):
        for r, row in enumerate(panel):
            for c, patch in enumerate(row):
                if (r * len(row) + c) % every:
                    continue
                expected = naive_metric(lm, task, target, engine.caches[source], patch).mean()
                assert abs(result.raw[p, r, c] - expected) < TOL, (kind, direction, p, r, c)


@pytest.mark.parametrize("kind", SWEEPS)
@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_every_sweep_equals_the_naive_loop_on_the_bundled_model(bundled, kind, direction):
    task = build_task(bundled, "ioi", n=2)
    check_sweep(bundled, task, kind, direction, every=1 if kind != "heads_by_pos" else 3)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kind", ["stream", "heads_by_pos", "head_parts", "mlp_out"])
def test_every_architecture_matches_the_naive_loop(tiny_model_dir, arch, kind):
    lm = load_model(str(tiny_model_dir(arch)))
    task = induction_task(lm, n=2, half_len=6, shown=4, moved_to=1)
    check_sweep(lm, task, kind, "denoise")


def test_grouped_query_keys_are_patched_per_query_head(tiny_model_dir):
    """The tiny Llama shares each key/value head between two query heads; patching one query head's
    keys must differ from patching its partner's, and each must equal the naive patch."""
    lm = load_model(str(tiny_model_dir("llama")))
    assert lm.cfg.n_kv_heads < lm.cfg.n_heads
    task = induction_task(lm, n=2, half_len=6, shown=4, moved_to=1)
    engine = PatchEngine(lm, task)
    patches = [(Site(act_name("k", 1), None, h),) for h in (0, 1)]
    values = engine.run(patches, source="clean", target="corrupt").mean(1)
    naive = [naive_metric(lm, task, "corrupt", engine.caches["clean"], p).mean() for p in patches]
    np.testing.assert_allclose(values, naive, atol=TOL)
    assert abs(values[0] - values[1]) > 1e-4


def test_clean_into_clean_gives_one_everywhere(bundled):
    task = build_task(bundled, "ioi", n=2)
    engine = PatchEngine(bundled, task)
    grid = sweep_patches("heads_by_pos", bundled.cfg.n_layers, bundled.cfg.n_heads, task.n_pos)[0]
    patches = [p for panel in grid for row in panel for p in row]
    for skip in (True, False):  # skipping no-ops, and running every patch for real
        values = engine.run(patches, source="clean", target="clean", skip_noops=skip).mean(1)
        np.testing.assert_allclose(engine.baseline.normalise(values), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", ["bundled", "gpt2", "llama"])
def test_denoising_the_whole_final_stream_gives_exactly_the_clean_metric(bundled, tiny_model_dir, arch):
    lm = bundled if arch == "bundled" else load_model(str(tiny_model_dir(arch)))
    task = build_task(lm, "ioi", n=4) if arch == "bundled" else induction_task(lm, n=2, half_len=6, shown=4,
                                                                                moved_to=1)
    engine = PatchEngine(lm, task)
    patch = (Site(stream_hook(lm.cfg.n_layers - 1)),)  # the stream after the last layer, every position
    rows = engine.run([patch], source="clean", target="corrupt", skip_noops=False)[0]
    np.testing.assert_array_equal(rows, engine.rows["clean"])
    assert engine.baseline.normalise(rows.mean()) == pytest.approx(1.0, abs=1e-6)


def test_a_patch_where_source_equals_target_runs_nothing(bundled):
    task = build_task(bundled, "ioi", n=2)
    engine = PatchEngine(bundled, task)
    first = min(task.differing_positions())
    before = engine.n_forward
    values = engine.run([(Site(act_name("resid_pre", 2), p),) for p in range(first)])
    assert engine.n_forward == before  # every patch sits before the first differing token
    np.testing.assert_array_equal(values, np.tile(engine.rows["corrupt"], (first, 1)))


def test_chunks_give_the_same_numbers_as_one_big_batch(bundled):
    task = build_task(bundled, "ioi", n=2)
    big = run_sweep(PatchEngine(bundled, task), "heads_by_pos")
    small = run_sweep(PatchEngine(bundled, task, max_floats=20_000), "heads_by_pos")
    assert small.n_forward > big.n_forward
    np.testing.assert_allclose(small.raw, big.raw, atol=TOL)
