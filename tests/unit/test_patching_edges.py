"""Edges: recomputed head inputs equal the model's own, edge runs against Wang et al.'s two-step path
patching written with plain hooks, EAP against finite differences, and the circuit found on the bundled
induction task against the evaluation report's heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.bundled.report import load_report, report_heads
from core.interp.patching import circuits as C
from core.interp.patching.edges import EdgeRunner
from core.interp.patching.engine import PatchEngine
from core.interp.patching.graph import Graph, graph_of
from core.interp.patching.node_inputs import door_input, head_inputs, mlp_output
from core.interp.patching.path_patching import path_patch_all
from core.interp.patching.tasks import build_task, induction_task
from core.models import act_name, load_model
from core.models.loading import BUNDLED_DIR

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")
TOL = 1e-4


@pytest.fixture(scope="module")
def bundled():
    return load_model()


def tiny(tiny_model_dir, arch):
    lm = load_model(str(tiny_model_dir(arch)))
    return lm, induction_task(lm, n=2, half_len=6, shown=4, moved_to=1)


@pytest.mark.parametrize("arch", ARCHS)
def test_recomputed_queries_keys_values_and_mlp_equal_the_hooks(tiny_model_dir, arch):
    lm, task = tiny(tiny_model_dir, arch)
    engine = PatchEngine(lm, task)
    cache = engine.caches["clean"]
    H = lm.cfg.n_heads
    for layer in range(lm.cfg.n_layers):
        x = cache[act_name("resid_pre", layer)]  # [batch, pos, d_model]
        q, k, v = head_inputs(lm, layer, x[:, :, None, None].expand(-1, -1, H, 3, -1))
        for door, y in zip("qkv", (q, k, v), strict=True):
            torch.testing.assert_close(y, cache[act_name(door, layer)], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(door_input(lm, layer, x[:, 2:], 1, door, start=2),
                                       cache[act_name(door, layer)][:, 2:, 1], atol=1e-5, rtol=1e-5)
        stream = x if lm.cfg.parallel_attn_mlp else x + cache[act_name("attn_out", layer)]
        torch.testing.assert_close(mlp_output(lm, layer, stream), cache[act_name("mlp_out", layer)],
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_no_edge_patched_is_the_target_and_every_edge_patched_is_the_source(tiny_model_dir, arch):
    lm, task = tiny(tiny_model_dir, arch)
    engine = PatchEngine(lm, task)
    runner = EdgeRunner(engine, "corrupt", "clean")
    g = runner.graph
    values = runner.run(np.stack([np.zeros(g.valid.shape), g.valid.astype(float)]))
    np.testing.assert_allclose(values[0], engine.rows["clean"], atol=TOL)
    np.testing.assert_allclose(values[1], engine.rows["corrupt"], atol=TOL)


def two_step_path_patch(lm, engine, sender, receiver, door, source="corrupt", target="clean") -> float:
    """Wang et al.'s path patching with plain hooks: (1) run the target with the sender's z from the
    source and every other head's z and every MLP frozen to the target's; record the receiver's q/k/v
    (or the final stream for the logits); (2) run the target with just that patched in."""
    tgt, src = engine.caches[target], engine.caches[source]
    tokens = engine.tokens[target]
    (sl, sh) = sender
    hooks = []
    for layer in range(lm.cfg.n_layers):
        def freeze_z(act, hook, layer=layer):
            new = tgt[hook.name].clone()
            if layer == sl:
                new[:, :, sh] = src[hook.name][:, :, sh]
            return new
        hooks += [(act_name("z", layer), freeze_z), (act_name("mlp_out", layer), lambda a, h: tgt[h.name])]
    recorded = {}
    if receiver == "logits":
        name = act_name("resid_post", lm.cfg.n_layers - 1)
    else:
        name = act_name(door, receiver[0])

    def record(act, hook):
        recorded["x"] = act.clone()
        return act
    with torch.no_grad(), lm.hooks([*hooks, (name, record)]):
        lm(tokens)

    def put(act, hook):
        if receiver == "logits":
            return recorded["x"]
        act = act.clone()
        act[:, :, receiver[1]] = recorded["x"][:, :, receiver[1]]
        return act
    with torch.no_grad(), lm.hooks([(name, put)]):
        logits = lm(tokens)[:, -1]
    rows = torch.arange(len(tokens))
    return float((logits[rows, engine.task.answers[:, 0]] - logits[rows, engine.task.answers[:, 1]]).mean())


@pytest.mark.parametrize("arch", ["bundled", *ARCHS])
def test_path_patching_equals_the_two_step_method(bundled, tiny_model_dir, arch):
    if arch == "bundled":
        lm, task = bundled, build_task(bundled, "induction", n=3)
    else:
        lm, task = tiny(tiny_model_dir, arch)
    engine = PatchEngine(lm, task)
    result = path_patch_all(engine, "noise")
    L = lm.cfg.n_layers
    heads = list(result.heads)
    checks = [((0, 1), (L - 1, 2), "k"), ((0, 0), (L - 1, 0), "q"), ((0, 3), (L - 1, 1), "v"),
              ((L - 1, 2), "logits", None)]
    for sender, receiver, door in checks:
        expected = two_step_path_patch(lm, engine, sender, receiver, door)
        i = result.senders.index(heads.index(sender))
        if receiver == "logits":
            got = result.direct_raw[i]
        else:
            got = result.raw[i, heads.index(receiver), "qkv".index(door)]
        assert abs(got - expected) < TOL, (arch, sender, receiver, door)


def test_eap_equals_the_finite_difference_of_a_single_edge(bundled):
    task = build_task(bundled, "ioi", n=2)
    engine = PatchEngine(bundled, task)
    runner = EdgeRunner(engine, "corrupt", "clean")
    scores = runner.attribution()
    g = runner.graph
    eps = 1e-2
    engine.add_source("step", {n: engine.caches["clean"][n] + eps * (engine.caches["corrupt"][n] -
                                                                    engine.caches["clean"][n])
                               for n in engine.caches["clean"]})
    small = EdgeRunner(engine, "step", "clean")
    for r, s in [(g.logits, g.head_sender(3, 0)), (g.head_receiver(3, 0, "k"), g.head_sender(2, 1)),
                 (g.head_receiver(3, 0, "v"), 0), (g.mlp_receiver(2), g.head_sender(2, 1))]:
        mask = np.zeros(g.valid.shape)
        mask[r, s] = 1
        fd = (small.run_one(mask) - engine.baseline.clean) / eps
        assert fd == pytest.approx(scores[r, s], rel=0.05, abs=2e-3), g.edge_name(r, s)


def test_eap_ig_with_one_step_is_eap(bundled):
    engine = PatchEngine(bundled, build_task(bundled, "pronouns", n=2))
    a = EdgeRunner(engine).attribution(steps=1)
    b = C.eap_scores(engine, steps=1).scores * engine.baseline.gap
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_graph_counts_and_pruning():
    g = Graph(4, 4)
    assert g.n_edges == 479  # the bundled model's graph: the "about 500 edges"
    assert g.valid[g.mlp_receiver(0), g.head_sender(0, 2)]  # an MLP reads its own layer's heads
    assert not Graph(4, 4, parallel=True).valid[g.mlp_receiver(0), g.head_sender(0, 2)]
    kept = np.zeros(g.valid.shape, dtype=bool)
    kept[g.logits, g.head_sender(3, 1)] = True  # 3.1 -> logits, but nothing into 3.1
    assert not C.prune(g, kept).any()
    kept[g.head_receiver(3, 1, "v"), 0] = True  # embed -> 3.1 v: now a path from embed to the logits
    kept[g.head_receiver(2, 0, "q"), 0] = True  # embed -> 2.0 q, and nothing reads 2.0
    pruned = C.prune(g, kept)
    assert pruned[g.logits, g.head_sender(3, 1)] and pruned[g.head_receiver(3, 1, "v"), 0]
    assert not pruned[g.head_receiver(2, 0, "q"), 0]


def test_faithfulness_of_everything_is_one_and_of_nothing_zero(tiny_model_dir):
    lm, task = tiny(tiny_model_dir, "gpt2")
    engine = PatchEngine(lm, task)
    runner = EdgeRunner(engine)
    g = graph_of(lm)
    assert C.faithfulness(runner, g.valid.copy()) == pytest.approx(1.0, abs=1e-3)
    assert C.faithfulness(runner, np.zeros(g.valid.shape, dtype=bool)) == pytest.approx(0.0, abs=1e-3)


def report_truth() -> set[tuple[int, int]]:
    heads = report_heads(load_report(BUNDLED_DIR))
    return {(a, b) for kind in ("previous_token", "induction") for a, b, _ in heads[kind]}


def test_the_induction_circuit_contains_the_reports_heads(bundled):
    truth = report_truth()
    assert truth == {(2, 0), (3, 1), (3, 2), (3, 3)}
    engine = PatchEngine(bundled, build_task(bundled, "induction"))
    scores = C.eap_scores(engine, steps=C.IG_STEPS)
    eap_ig = C.Circuit(graph_of(bundled), C.top_edges(scores, C.DEFAULT_EDGES), "EAP-IG", None)
    precision, recall = C.head_precision_recall(eap_ig.heads(), truth)
    assert recall == 1.0 and precision >= 0.75, sorted(eap_ig.heads())
    assert C.faithfulness(EdgeRunner(engine), eap_ig.kept) >= 0.8
    acdc = C.acdc(engine, C.ACDC_THRESHOLD)
    found = C.Circuit(acdc.graph, acdc.kept, "ACDC", acdc.faithfulness).heads()
    precision, recall = C.head_precision_recall(found, truth)
    assert recall == 1.0 and precision >= 0.6, sorted(found)
    assert acdc.faithfulness >= 0.8 and not acdc.stopped


def test_plain_eap_misses_the_previous_token_head_that_eap_ig_finds(bundled):
    """Attention saturation: at the clean point the induction heads' keys have almost no gradient."""
    engine = PatchEngine(bundled, build_task(bundled, "induction"))
    g = graph_of(bundled)
    plain = C.Circuit(g, C.top_edges(C.eap_scores(engine, steps=1), C.DEFAULT_EDGES), "EAP", None)
    assert (2, 0) not in plain.heads()
    assert C.faithfulness(EdgeRunner(engine), plain.kept) < 0.5


def test_a_stopped_acdc_keeps_every_edge_it_did_not_test(tiny_model_dir):
    """Stop interrupts the run at a progress update (Streamlit reruns the page); the page finishes the
    partial state with acdc_result: edges not tested yet stay in the circuit."""
    lm, task = tiny(tiny_model_dir, "gpt2")
    engine = PatchEngine(lm, task)
    seen = {}

    class Stop(Exception):
        pass

    def progress(fraction, edge, patched, tested):
        assert 0 < fraction <= 1 and " -> " in edge
        seen.update(patched=patched.copy(), tested=tested)
        if tested >= 5:
            raise Stop

    with pytest.raises(Stop):
        C.acdc(engine, 0.02, progress=progress)
    partial = C.acdc_result(engine, seen["patched"], 0.02, 6, seen["tested"], 0.1, stopped=True)
    full = C.acdc(engine, 0.02)
    assert partial.stopped and partial.n_tested == seen["tested"] >= 5 and not full.stopped
    assert partial.kept.sum() >= full.kept.sum() and partial.faithfulness == pytest.approx(1.0, abs=0.05)


def sequential_acdc(engine, threshold):
    """ACDC as written in the paper: one patched run per edge tested, in the same order."""
    runner = EdgeRunner(engine, "corrupt", "clean")
    g, b = runner.graph, engine.baseline
    patched = np.zeros((g.n_receivers, g.n_senders), dtype=np.float32)
    current = float(b.normalise(runner.run_one(patched)))
    for r in [g.logits, *reversed(range(g.n_receivers - 1))]:
        senders = [s for s in reversed(range(g.n_senders)) if g.valid[r, s]]
        node = g.receiver_sender(r)
        if node is not None and not (g.valid[:, node] & (patched[:, node] == 0)).any():
            patched[r, senders] = 1.0
            continue
        for s in senders:
            patched[r, s] = 1.0
            value = float(b.normalise(runner.run_one(patched)))
            if abs(value - current) < threshold:
                current = value
            else:
                patched[r, s] = 0.0
    return C.prune(g, (patched == 0) & g.valid)


@pytest.mark.parametrize(("arch", "threshold"), [("gpt2", 0.02), ("llama", 0.05), ("bundled", 0.02)])
def test_batched_acdc_makes_the_sequential_decisions(bundled, tiny_model_dir, arch, threshold):
    if arch == "bundled":
        engine = PatchEngine(bundled, build_task(bundled, "pronouns", n=4))
    else:
        engine = PatchEngine(*tiny(tiny_model_dir, arch))
    result = C.acdc(engine, threshold)
    np.testing.assert_array_equal(result.kept, sequential_acdc(engine, threshold))
    assert result.n_forward <= result.n_tested + 1
    if arch == "bundled":  # most edges pruned: a pass decides several of them
        assert result.n_forward < result.n_tested / 2
