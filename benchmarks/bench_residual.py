"""Residual stream page: the tuned lens trained on the bundled model (goal: under 20 s), and the logit
lens and direct logit attribution redraws (goal: under 0.3 s), all on one torch thread.

- Tuned lens: everything the page's "Train" button does on the bundled model: read the stream at
  every point for 200 corpus rows (25,400 tokens) and 40 held-out rows, train one translator per
  layer (200 Adam steps of 256 tokens), and measure both lenses' KL on the held-out tokens.
- Logit lens and DLA for a 64-token prompt (the page's cap): the computation the page runs when the
  prompt changes (a forward pass with the hooks, then the readout at every point), and the redraw
  when only a display control changes (the cached result turned into a frame and an Altair spec).
- Peer for DLA: TransformerLens on a twin of the bundled model's config (random weights, the timing
  does not depend on them): run_with_cache, then stack_head_results + the unembedded logit
  difference, the usual TransformerLens recipe; measured interleaved with ours on the same thread.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks import Result, interleaved, median_of, transformer_lens_twin
from core.interp.residual import dla as D
from core.interp.residual import logit_lens as L
from core.interp.residual import tuned_lens as TL
from core.interp.residual import verdicts as V
from core.models import load_model
from core.world.corpus import build_corpus
from ui.residual import charts, frames

ROOT = Path(__file__).resolve().parents[1]
WORDS = "kite Oslo purple cheerful Ben lake moo Tokyo duck river."
N_TOKENS = 64


def _prompt(lm) -> torch.Tensor:
    tokens = lm.to_tokens(" ".join([WORDS] * 8))[:, :N_TOKENS]
    assert tokens.shape[1] == N_TOKENS
    return tokens


def _train_tuned(lm) -> None:
    train = TL.stream_data(lm, build_corpus(200, 101).rows)
    held = TL.stream_data(lm, build_corpus(40, 202).rows)
    lens = TL.TunedLens(steps=200, lr=5e-3, batch_tokens=256, init="zero").fit(lm, train)
    V.compare_lenses(L.stream_points(lm), TL.kl_per_layer(lm, held), TL.kl_per_layer(lm, held, lens))


def _lens_peer(lm):
    model = transformer_lens_twin(lm.model.config)
    if model is None:
        return None
    tokens = _prompt(lm)

    def dla():
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
            heads = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)  # [comp, 1, d]
            direction = model.W_U[:, 7] - model.W_U[:, 8]
            return heads[:, 0] @ direction
    return dla


def _page_redraws() -> dict[str, float]:
    """The whole page script rerun (AppTest, caches warm) when a display-only control moves: the
    colour of the logit lens, and the DLA tab re-entered. Median of 5 reruns each, in seconds."""
    from streamlit.testing.v1 import AppTest

    times = {}
    for view, key, values in (("Logit lens", "res_colour", ("next", "answer")),
                              ("Direct logit attribution", "res_colour", ("next", "answer"))):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.query_params.update({"res_view": view})
        at.session_state["predict_first"] = False
        at.run()
        at.switch_page("app_pages/residual.py")
        at.run()
        for v in values:  # warm both settings
            at.segmented_control(key=key).set_value(v).run()
        runs = []
        for i in range(5):
            start = time.perf_counter()
            at.segmented_control(key=key).set_value(values[i % 2]).run()
            runs.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
        times[view] = sorted(runs)[2]
    return times


def run() -> list[Result]:
    torch.set_num_threads(1)
    lm = load_model()
    tokens = _prompt(lm)
    pos = tokens.shape[1] - 1
    out = []
    med, spread = median_of(lambda: _train_tuned(lm), repeat=3, warmup=0)
    out.append(Result("tuned lens, bundled model (read 30k streams, 200 steps, KL)", med, "s", goal="< 20 s",
                      repeats=3, threads=1, note=f"min-max {spread[0]:.1f}-{spread[1]:.1f} s"))

    grid_of = lambda: L.lens_grid(lm, tokens, [7] * N_TOKENS)  # noqa: E731
    med, _ = median_of(grid_of)
    out.append(Result("logit lens, 64-token prompt: compute", med * 1e3, "ms", repeats=5, threads=1))
    grid = grid_of()
    decode = lambda i: lm.to_string([i])  # noqa: E731
    med, _ = median_of(lambda: charts.lens_grid(frames.grid_frame(grid, decode), "t").to_dict())
    out.append(Result("logit lens redraw (cached grid -> frame -> chart spec)", med * 1e3, "ms",
                      goal="< 300 ms", repeats=5, threads=1))

    dla_of = lambda: D.direct_logit_attribution(lm, tokens, [pos], [7], [8])  # noqa: E731
    peer = _lens_peer(lm)
    if peer is not None:
        cmp = interleaved(dla_of, peer, repeats=5)
        out.append(cmp.result("DLA, 64-token prompt: compute", "TransformerLens stack_head_results",
                              unit="ms", scale=1e3))
    else:
        med, _ = median_of(dla_of)
        out.append(Result("DLA, 64-token prompt: compute", med * 1e3, "ms", repeats=5, threads=1))
    r = dla_of()

    def redraw():
        charts.dla_bars(frames.dla_groups_frame(r), r.sum_of_parts).to_dict()
        charts.head_heatmap(frames.head_frame(r.head_table)).to_dict()
        charts.accumulated_line(frames.accumulated_frame(r), r.total).to_dict()
    med, _ = median_of(redraw)
    out.append(Result("DLA redraw (cached result -> frames -> 3 chart specs)", med * 1e3, "ms",
                      goal="< 300 ms", repeats=5, threads=1))
    for view, t in _page_redraws().items():
        out.append(Result(f"whole page rerun, {view} tab, display control moved (AppTest)", t * 1e3, "ms",
                          goal="< 300 ms", repeats=5, threads=1,
                          note="server side: every element of the page, the sidebar included"))
    return out
