"""XOR page: training speed of the hand-written numpy network against the same loop in torch autograd.

The page retrains on every slider move, so a whole run must take well under a second. Both sides
train a 2-16-1 tanh net with cross-entropy and Adam (lr 0.01) for 2,000 full-batch epochs on the
same 200 noisy-XOR points from the same initial weights, in float64, and end at the same loss.
Torch runs on one thread, its fastest setting for tensors this small.
"""

from __future__ import annotations

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
    return [
        Result("xor: 2,000 full-batch epochs, 2-16-1 net, 200 points", ours, "s", peer="torch autograd",
               peer_value=peer, goal="< 0.3 s",
               note=f"final loss ours {ours_loss:.6f}, torch {torch_loss:.6f} (same init, float64); "
                    "ours includes snapshots and diagnosis; torch on 1 thread (faster than 2 here)"),
        Result("xor: page default, 1,000 epochs, 2-2-1 net, 4 points", page_time, "s", goal="< 0.3 s"),
    ]
