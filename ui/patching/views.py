"""Words and layout of the Activation patching page: the pair, and one function per tab. Every
sentence about a result is worded from a verdict (core.interp.patching.verdicts)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.patching import path_patching as P
from core.interp.patching import verdicts as V
from core.interp.patching.graph import graph_of
from core.interp.patching.metric import MIN_GAP
from core.interp.patching.sweeps import SWEEPS
from core.interp.patching.tasks import PatchingTask
from core.models.hook_names import EMBEDDINGS, layer_words, short_label
from ui.common.interventions import signature
from ui.common.page import escape_markdown
from ui.common.registry import topic_at
from ui.patching import charts, compute, handoff
from ui.patching import frames as F
from ui.patching.controls import key_of

TABS = ("Sweeps", "Path patching", "Attribution vs exact", "Circuit", "Cross-check")
SWEEP_LABELS = {"stream": "Residual stream", "attn_out": "Attention out", "mlp_out": "MLP out",
                "heads": "Heads", "heads_by_pos": "Heads by position", "head_parts": "Head q, k, v, pattern"}
ESTIMATES = {"AtP (linear)": "atp", "AtP* (QK fix)": "atp_star"}
ROW_TITLES = {"stream": "layer (the stream after it; embed = before layer 0)",
              "attn_out": "attention of layer",
              "mlp_out": "MLP of layer", "heads": "layer", "heads_by_pos": "head (layer.head)",
              "head_parts": "layer"}
EFFECT_TITLES = {"denoise": "share restored", "noise": "share destroyed"}


def stream_row_layer(row: str) -> int:
    """A stream sweep's row label ("embed" or "2", core.models.hook_names.short_label) as its lab layer."""
    return EMBEDDINGS if row == short_label(EMBEDDINGS) else int(row)


def component(kind: str, panel: str, row: str, col: str) -> str:
    """A patch in words: "layer 2 at 10 ' John' (S2)", "head 3.0 (all positions)", "head 1.2's keys"."""
    if kind == "stream":
        return f"{layer_words(stream_row_layer(row))} at {col}"
    if kind in ("attn_out", "mlp_out"):
        return f"{'the attention' if kind == 'attn_out' else 'the MLP'} of layer {row} at {col}"
    if kind == "heads_by_pos":
        return f"head {row} at {col}"
    head = f"head {row}.{col.split()[-1]}"
    if panel == "output":
        return f"{head} (all positions)"
    return f"{head}'s {F.PANEL_WORDS[panel]} (all positions)"


def _q(text: str) -> str:
    return escape_markdown(text)


def _pct(x: float) -> str:
    return f"{x:.0%}"


# -- the pair -------------------------------------------------------------------------------------------
def show_pair(task: PatchingTask, b) -> None:
    """The clean and corrupted prompts, their logit differences raw and normalised, and a warning when
    the two runs barely differ (the page goes on: the raw numbers still mean something)."""
    v = V.pair_verdict(b)
    left, right = st.columns(2)
    left.markdown(f"**Clean** ({task.n_batch} prompt{'s' * (task.n_batch > 1)} like this one):  \n"
                  f"{_q(task.clean_text)} → **{_q(task.right.strip())}** (right answer)")
    right.markdown(f"**Corrupted:**  \n{_q(task.corrupt_text)} → **{_q(task.wrong.strip())}** (wrong answer)")
    st.caption(task.about)
    with st.container(horizontal=True):
        st.metric("Logit difference, clean", f"{b.clean:+.2f}",
                  help="logit(right) - logit(wrong), mean over prompts")
        st.metric("Logit difference, corrupted", f"{b.corrupt:+.2f}")
        st.metric("Normalised", "clean 1, corrupted 0",
                  help="(patched - corrupted) / (clean - corrupted): every patch below is on this scale.")
    if not v.usable:
        st.warning(f"Clean and corrupted differ by only {abs(b.gap):.2f} logits (under {MIN_GAP}): the "
                   "model barely tells them apart, so the normalised numbers below are mostly noise (hover "
                   "for the raw logit differences). Pick prompts whose answers "
                   "differ.", icon=":material/warning:")
    elif not v.clean_right:
        st.caption("Note: on the clean prompts the model does not prefer the right answer "
                   f"({b.clean:+.2f}); the page still explains the difference between the two runs.")


# -- sweeps ---------------------------------------------------------------------------------------------
def sweep_control() -> str:
    """Which sweep to draw (the same choices on every model: one that needs the model here says so)."""
    label = st.segmented_control("Patch", [SWEEP_LABELS[k] for k in SWEEPS], default=SWEEP_LABELS["stream"],
                                 required=True, key="patch_sweep", bind="query-params")
    return key_of(SWEEP_LABELS, label, "stream")


def sweep_chart(frame, kind: str, direction: str) -> None:
    col_title = "position" if kind in ("stream", "attn_out", "mlp_out", "heads_by_pos") else "head"
    st.altair_chart(charts.sweep_heatmap(frame, row_title=ROW_TITLES[kind], col_title=col_title,
                                         effect_title=EFFECT_TITLES[direction]), width="content")


def sweeps_tab(lm, behaviour: str, custom: tuple, direction: str) -> None:
    kind = sweep_control()
    result = compute.sweep(lm, behaviour, custom, kind, direction, signature(lm))
    sweep_chart(F.sweep_frame(result), kind, direction)
    passes = f"{result.n_forward} batched forward pass{'es' * (result.n_forward != 1)}"
    st.caption(f"{result.n_patches:,} patches in {passes}, {result.seconds:.2f} s (patches that change "
               "nothing are not run). Hover a cell for every number.")
    sweep_notice(lm, kind, result, direction)


def sweep_notice(lm, kind: str, result, direction: str) -> None:
    """What to notice in a sweep (words from core.interp.patching.verdicts), and the hand-off links."""
    verdict = V.sweep_verdict(result)
    words = {"denoise": "restores", "noise": "destroys"}[direction]
    if not verdict.top:
        st.markdown(f"**What to notice.** No single patch here moves the metric by {_pct(V.NOTABLE)} or "
                    "more: the behaviour is spread over many components, or lives elsewhere (try "
                    "another sweep).")
    else:
        (panel, row, col, eff), *rest = verdict.top
        others = "; ".join(f"{component(kind, p, r, c)}: {_pct(e)}" for p, r, c, e in rest)
        st.markdown(f"**What to notice.** The strongest patch is {_q(component(kind, panel, row, col))}: it "
                    f"alone {words} {_pct(eff)} of the behaviour. {verdict.n_strong} "
                    f"patch{'es move' if verdict.n_strong != 1 else ' moves'} it by {_pct(V.STRONG)} or "
                    f"more, {verdict.n_notable} by {_pct(V.NOTABLE)} or more."
                    + (f" Next: {_q(others)}." if others else ""))
    if kind == "stream" and verdict.route:
        segs = V.route_segments(verdict.route)
        point = lambda x: layer_words(stream_row_layer(x))  # noqa: E731
        spans = "; ".join(f"{point(a) if a == b else f'{point(a)} to {b}'}: {_q(pos)}" for a, b, pos in segs)
        st.markdown(f"**Where the difference sits, layer by layer:** {spans}. Where the position changes, "
                    "an attention head moved the information (only attention moves it between positions).")
    _handoffs(lm, result, verdict)


def _handoffs(lm, result, verdict: V.SweepVerdict) -> None:
    if not verdict.top:
        return
    panel, row, col, _ = verdict.top[0]
    with st.container(horizontal=True):
        if result.kind == "heads_by_pos":
            layer, head = (int(x) for x in row.split("."))
            handoff.head_link(layer, head)
        elif result.kind in ("heads", "head_parts"):
            handoff.head_link(int(row), int(col.split()[-1]))
        elif result.kind == "stream":
            # the last layer before the information moves to another position (or the top patch)
            segs = V.route_segments(verdict.route)
            last = segs[0][1] if len(segs) > 1 else row
            handoff.layer_links(stream_row_layer(last))
        else:
            handoff.layer_links(int(row))


# -- path patching --------------------------------------------------------------------------------------
def paths_tab(lm, behaviour: str, custom: tuple, direction: str) -> None:
    c = lm.cfg
    senders = None
    if P.n_pairs(c.n_layers, c.n_heads) > P.MAX_PAIRS:
        heads = [(layer, h) for layer in range(c.n_layers) for h in range(c.n_heads)]
        heads_sweep = compute.sweep(lm, behaviour, custom, "heads", direction, signature(lm))
        effects = V.head_effects(heads_sweep).ravel()
        default = [int(i) for i in np.argsort(-np.abs(effects))[:3]]
        picked = st.multiselect("Sender heads (this model has too many pairs to patch them all)",
                                range(len(heads)), default=default,
                                format_func=lambda i: f"{heads[i][0]}.{heads[i][1]}",
                                key="patch_senders", max_selections=8)
        if not picked:
            st.info("Pick at least one sender head.", icon=":material/arrow_upward:")
            return
        senders = tuple(sorted(picked))
    result = compute.paths(lm, behaviour, custom, direction, senders, signature(lm))
    st.altair_chart(charts.path_heatmap(F.path_frame(result)), width="content")
    st.caption(f"{result.n_pairs:,} sender -> receiver paths in {result.n_forward} batched "
               f"pass{'es' * (result.n_forward != 1)}, {result.seconds:.2f} s. Each cell patches one head's "
               "output as one later head's query, key or value reads it (or as the logits read it, "
               "'direct'), and nothing else.")
    strongest = [(p, e) for p, e in result.strongest(6) if abs(e) >= V.NOTABLE]
    if strongest:
        listed = "; ".join(f"{_q(p)} ({_pct(e)})" for p, e in strongest)
        st.markdown(f"**What to notice.** The strongest paths: {listed}"
                    + ". A strong k path means the receiver finds its position by what the sender wrote; a v "
                      "path, that it moves what the sender wrote; q, that it decides where to look by it.")
    else:
        st.markdown(f"**What to notice.** No single path carries {_pct(V.NOTABLE)} of the behaviour: the "
                    "effect is spread over many paths (or runs through MLPs).")


# -- attribution ----------------------------------------------------------------------------------------
def attribution_tab(lm, behaviour: str, custom: tuple, direction: str) -> None:
    label = st.segmented_control("Estimate", list(ESTIMATES), default="AtP* (QK fix)", required=True,
                                 key="patch_estimate", bind="query-params")
    estimate = ESTIMATES.get(label, "atp_star")
    a = compute.attribution(lm, behaviour, custom, direction, signature(lm))
    st.altair_chart(charts.attribution_scatter(F.attribution_frame(a, estimate),
                                               "AtP*" if estimate == "atp_star" else "AtP"), width="content")
    st.caption(f"{len(a.names):,} components estimated from one backward pass in {a.seconds:.2f} s, against "
               "the exact head x position and head q / k / v / pattern sweeps of the Sweeps tab (same "
               "direction). On the dashed line the estimate is exact.")
    v = V.attribution_verdict(a, estimate)
    corr = v.correlation_star if estimate == "atp_star" else v.correlation_atp
    lines = [f"**What to notice.** The estimate correlates {corr:.2f} with the exact patches "
             + ("(it tracks them)." if v.tracks else f"(under {V.GOOD_CORRELATION}: it does not track them "
                                                     "well).")]
    lines.append(f"On queries and keys the QK fix {'brings' if v.qk_fix_helps else 'does not bring'} the "
                 f"estimate closer (mean miss {v.qk_miss_atp:.3f} with AtP, {v.qk_miss_star:.3f} with AtP*).")
    if v.failures:
        lines.append(f"The approximation fails (off by more than {a_fail()}) at: " + "; ".join(
            f"{_q(n)} (exact {x:+.2f}, estimate {y:+.2f})" for n, x, y in v.failures[:6])
            + (f", and {len(v.failures) - 6} more" if len(v.failures) > 6 else "") + ".")
        if v.failures_large:
            lines.append(f"Every miss is a patch that moves the metric by {_pct(V.STRONG)} or more: a step "
                         "that large leaves the region where the model is close to linear.")
    else:
        lines.append(f"No component is off by more than {a_fail()}.")
    st.markdown(" ".join(lines))


def a_fail() -> str:
    from core.interp.patching.attribution import FAIL_GAP
    return _pct(FAIL_GAP)


# -- circuit --------------------------------------------------------------------------------------------
def circuit_controls(lm) -> tuple[int, int]:
    g = graph_of(lm)
    left, middle, right = st.columns([1, 1, 2])
    method = left.segmented_control("Method", ["EAP", "EAP-IG"], default="EAP-IG", required=True,
                                    key="patch_method", bind="query-params")
    steps = middle.slider("IG steps", 2, 20, 5, key="patch_steps", bind="query-params",
                          disabled=method == "EAP",
                          help="Points on the line from the corrupted to the clean embeddings where the "
                               "gradient is averaged (integrated gradients).")
    most = int(min(g.n_edges, 200))
    n_edges = right.slider("Edges kept (the threshold: the top edges by |score|)", 3, most,
                           min(30, most), key="patch_edges", bind="query-params")
    return (1 if method == "EAP" else int(steps)), int(n_edges)  # (anything but "EAP" means EAP-IG)


def circuit_tab(lm, behaviour: str, custom: tuple, truth: set | None) -> None:
    steps, n_edges = circuit_controls(lm)
    scores = compute.edge_scores(lm, behaviour, custom, steps, signature(lm))
    circ = compute.circuit(lm, behaviour, custom, steps, n_edges, signature(lm))
    nodes, edges = F.graph_frames(circ.graph, circ.kept, scores.scores)
    st.altair_chart(charts.circuit_graph(nodes, edges, lm.cfg.n_heads, lm.cfg.n_layers), width="content")
    v = V.circuit_verdict(circ.faithfulness, circ.n_edges, circ.heads())
    with st.container(horizontal=True):
        st.metric("Faithfulness", f"{circ.faithfulness:.2f}",
                  help="The clean run with every edge outside the circuit patched to the corrupted run: 1 = "
                       "the circuit alone carries the clean behaviour.")
        st.metric("… with the rest mean-ablated", f"{circ.mean_faithfulness:.2f}",
                  help="The same, with every edge outside the circuit set to its mean over all "
                       "prompts instead.")
        st.metric("Edges", f"{circ.n_edges} of {circ.graph.n_edges}",
                  help=f"The top {n_edges} edges by |score|, minus edges that cannot matter (out of a "
                       "component with no kept input, or into one nothing kept reads).")
        st.metric("Scored in", f"{scores.seconds:.2f} s")
    heads = ", ".join(f"{a}.{b}" for a, b in v.heads) or "none"
    level = {"faithful": "keeps most of the behaviour", "partial": "keeps part of the behaviour",
             "unfaithful": "keeps little of the behaviour"}[v.level]
    st.markdown(f"**What to notice.** This {scores.method} circuit of {v.n_edges} edges {level} "
                f"({v.faithfulness:.0%}); its heads: {heads}.")
    sizes = {5, 10, 15, 20, 30, 40, 60, 80, 120, n_edges} & set(range(3, circ.graph.n_edges + 1))
    sizes = tuple(sorted(sizes))
    points = compute.curve(lm, behaviour, custom, steps, sizes, signature(lm))
    st.altair_chart(charts.faithfulness_curve(F.curve_frame(points), circ.n_edges), width="content")
    if truth is not None:
        ground_truth(circ.heads(), truth, scores.method)
    acdc_section(lm, behaviour, custom, truth)
    send_section(lm, behaviour, custom, circ, scores.method)


def ground_truth(found: set, truth: set, method: str) -> None:
    g = V.ground_truth_verdict(found, truth)
    names = lambda hs: ", ".join(f"{a}.{b}" for a, b in hs) or "none"  # noqa: E731
    st.markdown("**Against the ground truth.** The evaluation report names the previous-token and induction "
                f"heads {names(sorted(truth))}. The {method} circuit's heads: precision {g.precision:.2f}, "
                f"recall {g.recall:.2f}."
                + (f" It misses {names(g.missed)}." if g.missed else " It contains every one.")
                + (f" It also holds {names(g.extra)}, which the report does not list as either kind."
                   if g.extra else ""))


def acdc_section(lm, behaviour: str, custom: tuple, truth: set | None) -> None:
    from core.interp.patching.circuits import ACDC_THRESHOLD, Circuit

    st.subheader("Exact ACDC")
    g = graph_of(lm)
    if g.n_edges > compute.ACDC_MAX_EDGES:
        st.caption(f"Exact ACDC tests edges one at a time; this model has {g.n_edges:,} edges (the page "
                   f"runs it up to {compute.ACDC_MAX_EDGES:,}, e.g. on the bundled model). EAP above scores "
                   "them all at once.")
        return
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    threshold = left.select_slider("Prune an edge if patching it moves the metric less than",
                                   [0.005, 0.01, 0.02, 0.05, 0.1],
                                   value=ACDC_THRESHOLD, key="patch_acdc_threshold", bind="query-params")
    key = compute.acdc_key(lm, behaviour, custom, threshold)
    compute.recover_stopped(lm, behaviour, custom, key)
    result = compute.acdc_result(key)
    if right.button("Run exact ACDC", key="patch_acdc_run", icon=":material/play_arrow:",
                    help=f"About one patched run per edge: {g.n_edges} edges."):
        result = compute.run_acdc(lm, behaviour, custom, threshold)
    if result is None:
        st.caption(f"ACDC walks from the logits back to the embeddings and patches each of the {g.n_edges} "
                   "edges for real, keeping it pruned if the metric hardly moves.")
        return
    circ = Circuit(result.graph, result.kept, "ACDC", result.faithfulness)
    if result.stopped:
        st.warning(f"Stopped after {result.n_tested} tests: the edges not tested yet stay in this circuit.",
                   icon=":material/stop_circle:")
    nodes, edges = F.graph_frames(result.graph, result.kept, None)
    st.altair_chart(charts.circuit_graph(nodes, edges, lm.cfg.n_heads, lm.cfg.n_layers), width="content")
    v = V.circuit_verdict(result.faithfulness, circ.n_edges, circ.heads())
    st.markdown(f"ACDC kept {v.n_edges} of {result.graph.n_edges} edges after {result.n_tested} tests in "
                f"{result.seconds:.1f} s; faithfulness {v.faithfulness:.2f}; heads: "
                + (", ".join(f"{a}.{b}" for a, b in v.heads) or "none") + ".")
    if truth is not None:
        ground_truth(circ.heads(), truth, "ACDC")


def send_section(lm, behaviour: str, custom: tuple, circ, method: str) -> None:
    heads = sorted(circ.heads())
    if not heads:
        return
    names = ", ".join(f"{a}.{b}" for a, b in heads)
    label = f"{behaviour} circuit ({method}, {circ.n_edges} edges): heads {names}"
    if st.button("Send to Steering as 'ablate these heads'", key="patch_send", icon=":material/send:"):
        engine = compute.engine_of(lm, behaviour, custom)
        means = handoff.mean_outputs(engine, heads)
        handoff.send_ablation(handoff.HeadAblation(label, lm.spec, tuple(heads), means, behaviour))
        st.toast("Sent: the Steering page lists it for this model.", icon=":material/check:")
    st.page_link(topic_at("steering").script, label="Open the Steering page", icon=":material/tune:")


# -- cross-check ----------------------------------------------------------------------------------------
def crosscheck_tab(lm, behaviour: str, custom: tuple) -> None:
    from core.interp.patching.circuits import DEFAULT_EDGES, IG_STEPS

    heads = compute.sweep(lm, behaviour, custom, "heads", "noise", signature(lm))
    c = lm.cfg
    senders = None
    if P.n_pairs(c.n_layers, c.n_heads) > P.MAX_PAIRS:
        eff = V.head_effects(heads).ravel()
        senders = tuple(sorted(int(i) for i in np.argsort(-np.abs(eff))[:4]))
    paths = compute.paths(lm, behaviour, custom, "noise", senders, signature(lm))
    circ = compute.circuit(lm, behaviour, custom, IG_STEPS, DEFAULT_EDGES, signature(lm))
    x = V.cross_check(heads, paths, circ.heads(), circ.faithfulness, circ.mean_faithfulness)
    names = lambda hs: ", ".join(f"{a}.{b}" for a, b in hs) or "none"  # noqa: E731
    st.markdown("Three methods, each asked which heads the behaviour needs (noising: patched from the "
                f"corrupted run). A head counts when it moves the metric by {_pct(V.HEAD_MATTERS)} or more.")
    st.dataframe([{"method": m, "heads": names(h)} for m, h in x.found.items()], hide_index=True)
    st.caption("exact patching: each head at every position. path patching: the head's strongest single "
               "path to a later head or the "
               f"logits{' (senders: the 4 strongest heads)' if senders else ''}. circuit: EAP-IG "
               f"({IG_STEPS} steps), top {DEFAULT_EDGES} edges.")
    if not x.disputed:
        st.markdown(f"**What to notice.** The methods agree: {names(x.agreed)}.")
    else:
        groups: dict[tuple, list] = {}
        for head, methods in x.disputed:
            groups.setdefault(methods, []).append(head)
        where = "; ".join(f"only {' and '.join(m)} find{'s' if len(m) == 1 else ''} {names(hs)}"
                          for m, hs in groups.items())
        common = (f"Every method finds {names(x.agreed)}" if x.agreed else "No head is found by every method")
        st.markdown(f"**What to notice.** {common}; they disagree elsewhere: {where}. Reading them: exact "
                    "patching counts every route through a head at once, path patching one path at a time, "
                    "and a circuit keeps edges, so a head can sit in it with little effect of its own.")
    agree = "agree" if x.ablations_agree else "disagree"
    st.markdown("Faithfulness of that circuit with the rest patched from the corrupted run: "
                f"{x.resample_faithfulness:.2f}; with the rest mean-ablated: {x.mean_faithfulness:.2f}. The "
                f"two ablations {agree} on whether the circuit is faithful.")
