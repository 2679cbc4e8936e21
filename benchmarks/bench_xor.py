"""XOR page: training speed of the hand-written numpy network against the same loop in torch autograd,
and what one frame of the replay costs.

The page retrains on every slider move, so a whole run must take well under a second. Both sides
train a 2-16-1 tanh net with cross-entropy and Adam (lr 0.01) for 2,000 full-batch epochs on the
same 200 noisy-XOR points from the same initial weights, in float64, and end at the same loss.
Torch runs on one thread, its fastest setting for tensors this small.

Play advances one frame per tick (ui.xor.player.TICK_S = 0.35 s), so a frame must cost less. A frame
is the player's fragment: every picture for one epoch, drawn through AppTest (server side; the
browser then updates the charts in place). After every run, fragment runs included, Streamlit
collects garbage over the whole heap (runner.postScriptGC); that collection is timed with torch and
transformers imported, before and after gc.freeze() (what ui.xor.player.freeze_long_lived does).
"""

from __future__ import annotations

import gc
import time

import numpy as np

from benchmarks import Result, best_of
from core.scratch.data import make_dataset
from core.scratch.mlp import init_params, unflatten
from core.scratch.train import TrainConfig, train

CFG = TrainConfig(hidden=(16,), activation="tanh", loss="bce", optimizer="adam", lr=0.01, epochs=2000)


def _torch_run(X: np.ndarray, y: np.ndarray) -> float:
    import torch
    import torch.nn.functional as F

    arch = CFG.architecture()
    (W1, b1), (W2, b2) = unflatten(init_params(arch, CFG.init, CFG.seed), arch.sizes)
    params = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in (W1, b1, W2, b2)]
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    opt = torch.optim.Adam(params, lr=CFG.lr)
    for _ in range(CFG.epochs):
        opt.zero_grad()
        z = torch.tanh(Xt @ params[0] + params[1]) @ params[2] + params[3]  # [n, 1]
        loss = F.binary_cross_entropy_with_logits(z[:, 0], yt)
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = torch.tanh(Xt @ params[0] + params[1]) @ params[2] + params[3]
        return float(F.binary_cross_entropy_with_logits(z[:, 0], yt))


def run() -> list[Result]:
    data = make_dataset("noisy_xor", n_points=200, noise=0.15, seed=0)
    ours_loss = train(CFG, data.X, data.y).final_loss
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the peer's best setting: on tensors this small, threads only add overhead
    try:
        torch_loss = _torch_run(data.X, data.y)
        peer = best_of(lambda: _torch_run(data.X, data.y), repeat=3)
    finally:
        torch.set_num_threads(threads)
    ours = best_of(lambda: train(CFG, data.X, data.y), repeat=5)
    xor = make_dataset("xor")
    page = TrainConfig(hidden=(2,), epochs=1000)
    page_time = best_of(lambda: train(page, xor.X, xor.y), repeat=5)
    frame = _frame_ms()
    gc_before, gc_after = _gc_ms()
    return [
        Result("xor: one replay frame (every picture), 2-2-1 net on XOR", frame["xor"], "ms",
               goal="< 350 ms (the tick)", note="server side, AppTest, templates warm; median of 4 frames"),
        Result("xor: one replay frame, 2-8-8-8-1 net on 200 spiral points", frame["spirals"], "ms",
               goal="< 350 ms (the tick)", note="server side, AppTest, templates warm; median of 4 frames"),
        Result("xor: Streamlit's full GC after each run (torch, transformers imported)", gc_before, "ms",
               peer="the same after gc.freeze()", peer_value=gc_after, goal="a few ms",
               note="runner.postScriptGC runs gc.collect(2) after every run, fragment runs too"),
        Result("xor: 2,000 full-batch epochs, 2-16-1 net, 200 points", ours, "s", peer="torch autograd",
               peer_value=peer, goal="< 0.3 s",
               note=f"final loss ours {ours_loss:.6f}, torch {torch_loss:.6f} (same init, float64); "
                    "ours includes snapshots and diagnosis; torch on 1 thread (faster than 2 here)"),
        Result("xor: page default, 1,000 epochs, 2-2-1 net, 4 points", page_time, "s", goal="< 0.3 s"),
    ]


def _frame_script():
    import time

    import streamlit as st

    from core.scratch.data import make_dataset
    from core.scratch.train import TrainConfig, train
    from ui.xor import player

    name, hidden = st.session_state["setup"]
    data = make_dataset(name, 200, 0.15, 0)
    result = train(TrainConfig(hidden=hidden, epochs=500), data.X, data.y)
    n = st.session_state.get("n", 0)
    st.session_state["n"] = n + 1
    start = time.perf_counter()
    epochs = result.snapshot_epochs
    player._pictures(data, result, int(epochs[(17 * n) % len(epochs)]), "bench")
    st.session_state.setdefault("times", []).append(time.perf_counter() - start)


def _frame_ms() -> dict[str, float]:
    """Median server-side time of one replay frame (the first run, which builds the templates, left out)."""
    from streamlit.testing.v1 import AppTest

    out = {}
    for label, setup in (("xor", ("xor", (2,))), ("spirals", ("spirals", (8, 8, 8)))):
        at = AppTest.from_function(_frame_script, default_timeout=300)
        at.session_state["setup"] = setup
        for _ in range(5):
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        out[label] = 1000 * float(np.median(at.session_state["times"][1:]))
    return out


def _gc_ms() -> tuple[float, float]:
    """gc.collect(2) with the app's imports loaded: as Streamlit runs it, then after gc.freeze()."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import ui.attention.compute  # noqa: F401  (what the pages import: altair, pandas, streamlit, core)
    import ui.xor.player  # noqa: F401  (freezes once on import: unfrozen again below)

    def collect() -> float:
        start = time.perf_counter()
        gc.collect(2)
        return 1000 * (time.perf_counter() - start)

    gc.unfreeze()
    before = float(np.median([collect() for _ in range(3)]))
    gc.freeze()
    after = float(np.median([collect() for _ in range(3)]))
    return before, after
