"""Circuit discovery: the smallest set of edges that still carries the behaviour.

Start from the graph of every edge (core.interp.patching.graph). A circuit is a subset of edges; to
test it, run the clean prompt with every edge *outside* it patched to the corrupted run's version.
Its **faithfulness** is the normalised metric of that run: 1 means the circuit alone carries the
whole clean behaviour, 0 means none of it.

Three ways to find one:

- **EAP**, edge attribution patching (Syed, Rager and Conmy, 2023): one forward and one backward pass
  estimate, for every edge at once, how much patching it alone would change the metric:
  (out_corrupt - out_clean) . d metric / d input. Keep the edges with the largest |estimate|.
- **EAP-IG** (Hanna, Pezzelle and Belinkov, 2024): the same with the gradient averaged over `steps`
  points on the straight line from the corrupted to the clean embeddings (integrated gradients),
  which fixes estimates that the gradient at the clean point gets wrong (saturated softmaxes).
- **ACDC** (Conmy et al., 2023), exact: walk the receivers from the logits back to the embeddings;
  for each incoming edge, patch it for real, and keep it patched (pruned) if the metric moves by less
  than a threshold. One forward pass per edge tested, so it is exact but slow; edges into a
  component that nothing kept reads are pruned without a test.

After choosing edges, edges that cannot matter are dropped: those out of a component with no kept
input (it reads only the corrupted stream, so what it writes is already the corrupted version) and
those into a component with no kept output (nothing downstream reads it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.interp.patching.edges import EdgeRunner
from core.interp.patching.engine import PatchEngine
from core.interp.patching.graph import Graph

ACDC_THRESHOLD = 0.02  # normalised metric: an edge whose patch moves it less than this is pruned
ACDC_BATCH = 6  # edges decided per batched pass at most (a kept edge wastes the hypotheses after it)
DEFAULT_EDGES = 30  # EAP circuits are drawn with this many top edges until the slider moves
IG_STEPS = 5


@dataclass(frozen=True)
class EdgeScores:
    """Estimated normalised change of the metric when each edge alone is patched clean -> corrupted
    [receiver, sender] (0 where there is no edge); negative = the edge carries the behaviour."""

    graph: Graph
    scores: np.ndarray
    method: str
    steps: int
    seconds: float

    def ranked(self) -> np.ndarray:
        """Edges [(receiver, sender)] by |score|, largest first."""
        edges = self.graph.edges
        order = np.argsort(-np.abs(self.scores[edges[:, 0], edges[:, 1]]), kind="stable")
        return edges[order]


@dataclass(frozen=True)
class Circuit:
    graph: Graph
    kept: np.ndarray  # bool [receiver, sender]
    method: str
    faithfulness: float | None  # normalised metric with everything else patched
    mean_faithfulness: float | None = None  # the same with everything else mean-ablated instead

    @property
    def n_edges(self) -> int:
        return int(self.kept.sum())

    def heads(self) -> set[tuple[int, int]]:
        """Heads with at least one kept edge in or out."""
        g = self.graph
        out = set()
        for r, s in np.argwhere(self.kept):
            head = g.sender_head(int(s))
            if head is not None:
                out.add(head)
            node = g.receiver_sender(int(r))
            if node is not None and g.sender_head(node) is not None:
                out.add(g.sender_head(node))
        return out

    def nodes(self) -> set[str]:
        g = self.graph
        names = {g.sender_names[s] for _, s in np.argwhere(self.kept)}
        return names | {g.receiver_node(int(r)) for r, _ in np.argwhere(self.kept)}


def eap_scores(engine: PatchEngine, steps: int = 1) -> EdgeScores:
    """EAP (steps = 1) or EAP-IG (steps > 1) for every edge of the graph, normalised by the gap."""
    start = time.perf_counter()
    runner = EdgeRunner(engine, source="corrupt", target="clean")
    raw = runner.attribution(steps=steps)
    gap = engine.baseline.gap
    scores = raw / gap if gap else raw * np.nan
    method = "EAP" if steps == 1 else f"EAP-IG ({steps} steps)"
    return EdgeScores(runner.graph, scores, method, steps, time.perf_counter() - start)


def prune(graph: Graph, kept: np.ndarray) -> np.ndarray:
    """Drop edges that cannot matter (see the module docstring) until nothing changes."""
    kept = kept & graph.valid
    inputs_of = {s: [r for r in range(graph.n_receivers) if graph.receiver_sender(r) == s]
                 for s in range(1, graph.n_senders)}
    while True:
        before = kept.sum()
        has_input = kept.any(axis=1)  # [receiver]
        for s, rows in inputs_of.items():  # a component (not embed) with no kept input
            if not has_input[rows].any():
                kept[:, s] = False
        read = kept.any(axis=0)  # [sender]: does anything kept read this component?
        for s, rows in inputs_of.items():
            if not read[s]:
                kept[rows] = False
        if kept.sum() == before:
            return kept


def top_edges(scores: EdgeScores, n_edges: int) -> np.ndarray:
    """The n_edges edges with the largest |score|, pruned: bool [receiver, sender]."""
    g = scores.graph
    kept = np.zeros((g.n_receivers, g.n_senders), dtype=bool)
    for r, s in scores.ranked()[:n_edges]:
        kept[r, s] = True
    return prune(g, kept)


def faithfulness(runner: EdgeRunner, kept: np.ndarray) -> float:
    """Normalised metric of the target run with every edge outside `kept` patched from the source."""
    value = runner.run_one((runner.graph.valid & ~kept).astype(np.float32))
    return float(runner.engine.baseline.normalise(value))


def circuit(engine: PatchEngine, kept: np.ndarray, method: str, mean_ablation: bool = False) -> Circuit:
    """A circuit with its faithfulness (and, if asked, its faithfulness under mean ablation)."""
    runner = EdgeRunner(engine, "corrupt", "clean")
    faith = faithfulness(runner, kept)
    mean = faithfulness(EdgeRunner(engine, engine.mean_source(), "clean"), kept) if mean_ablation else None
    return Circuit(runner.graph, kept, method, faith, mean)


def faithfulness_curve(engine: PatchEngine, scores: EdgeScores, sizes) -> list[tuple[int, int, float]]:
    """(edges asked for, edges kept after pruning, faithfulness) for circuits of several sizes, in one
    batched edge run."""
    runner = EdgeRunner(engine, "corrupt", "clean")
    kept = [top_edges(scores, int(n)) for n in sizes]
    masks = np.stack([(runner.graph.valid & ~k).astype(np.float32) for k in kept])
    values = runner.run(masks).mean(1)
    return [(int(n), int(k.sum()), float(engine.baseline.normalise(v)))
            for n, k, v in zip(sizes, kept, values, strict=True)]


@dataclass(frozen=True)
class AcdcResult:
    kept: np.ndarray  # bool [receiver, sender]
    graph: Graph
    threshold: float
    n_forward: int
    n_tested: int
    seconds: float
    stopped: bool  # the learner pressed Stop: untested edges were kept
    faithfulness: float


def acdc(engine: PatchEngine, threshold: float = ACDC_THRESHOLD,
         progress: Callable[[float, str, np.ndarray, int], None] | None = None) -> AcdcResult:
    """Exact ACDC-style pruning with the normalised logit difference (see the module docstring).

    The decisions are ACDC's, one edge after the other, but they are computed in batches: for the
    incoming edges e_1, e_2, ... of a receiver, hypothesis i removes e_1..e_i on top of what is pruned
    already, and all of them run as one batch. Edge e_i is pruned if hypothesis i moves the metric by
    less than the threshold from hypothesis i - 1, exactly the sequential test, as long as every
    earlier edge was pruned too. At the first edge that is kept, the hypotheses after it assumed the
    wrong state, so a new batch starts after it. Most edges are pruned, so ACDC_BATCH edges take about
    one pass instead of ACDC_BATCH.

    progress(fraction done, edge just decided, patched mask so far, edges tested so far) is called
    after every batch, so a caller can keep the state and, after a stop, finish with acdc_result(...):
    the edges not tested yet stay in the circuit."""
    start = time.perf_counter()
    runner = EdgeRunner(engine, "corrupt", "clean")
    g, b = runner.graph, engine.baseline
    patched = np.zeros((g.n_receivers, g.n_senders), dtype=np.float32)
    current = float(b.normalise(runner.run_one(patched)))
    order = [g.logits] + [r for r in reversed(range(g.n_receivers - 1))]
    total, seen, tested = g.n_edges, 0, 0
    for r in order:
        senders = [s for s in reversed(range(g.n_senders)) if g.valid[r, s]]
        node = g.receiver_sender(r)
        if node is not None and not (g.valid[:, node] & (patched[:, node] == 0)).any():
            patched[r, senders] = 1.0  # nothing reads this component any more
            seen += len(senders)
            continue
        i = 0
        while i < len(senders):
            todo = senders[i: i + ACDC_BATCH]
            masks = np.repeat(patched[None], len(todo), axis=0)
            for k, s in enumerate(todo):  # hypothesis k: todo[0..k] pruned on top of the current state
                masks[k:, r, s] = 1.0
            values = b.normalise(runner.run(masks).mean(1))
            for k, s in enumerate(todo):
                tested += 1
                seen += 1
                if abs(values[k] - current) < threshold:
                    patched[r, s] = 1.0
                    current = float(values[k])
                    i += 1
                else:
                    i += 1  # kept: the hypotheses after this one assumed it pruned, so run them again
                    break
            if progress is not None:
                progress(seen / total, g.edge_name(r, senders[i - 1]), patched, tested)
    return acdc_result(engine, patched, threshold, runner.n_forward, tested, time.perf_counter() - start,
                       stopped=False)


def acdc_result(engine: PatchEngine, patched: np.ndarray, threshold: float, n_forward: int, n_tested: int,
                seconds: float, stopped: bool) -> AcdcResult:
    """The circuit ACDC leaves (untested edges stay in it), pruned, with its faithfulness."""
    runner = EdgeRunner(engine, "corrupt", "clean")
    g = runner.graph
    kept = prune(g, (patched == 0) & g.valid)
    return AcdcResult(kept, g, threshold, n_forward, n_tested, seconds, stopped, faithfulness(runner, kept))


def head_precision_recall(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float]:
    """Precision (share of found heads that are true) and recall (share of true heads found)."""
    hit = len(found & truth)
    precision = hit / len(found) if found else 0.0
    recall = hit / len(truth) if truth else 0.0
    return precision, recall
