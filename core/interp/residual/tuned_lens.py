"""The tuned lens (Belrose et al., 2023): a small learned translation per layer before the readout.

The logit lens assumes every layer already writes in the final layer's basis. Often it does not: an
early layer can hold the answer in directions the unembedding does not read yet, and the logit lens
then shows noise, or the input token, where the information already is. The tuned lens gives each
stream point L its own affine translator

    lens_L(x) = readout(x + x @ A_L + b_L)        A_L [d_model, d_model], b_L [d_model]

trained so that its distribution matches the model's final one: minimise KL(final || lens_L) on
ordinary text. The last stream point needs no translator (its lens is the output itself). A and b
start at zero, so training starts from the logit lens. Optionally they start from the least-squares
map from the stream at L to the final stream (Din et al., 2023, "Jump to conclusions"): one ridge
regression per layer, cheap even for a big vocabulary, which KL training then refines.

How to read the comparison: the KL from each lens to the final output, per layer, on held-out text.
Where the tuned lens is much closer than the logit lens, the logit lens was misreading that layer:
the information is there, in a basis of its own. Where both are far off, the layer does not yet
hold the answer in any linearly readable form.

Training data: the stream at every point for every token of some text (the bundled corpus, or text
you paste for a hub model), the first token of each row left out (it is the beginning-of-text
token, whose stream is huge and carries no prediction). Each step samples a batch of tokens,
computes the final distribution from the final stream, and updates every translator with Adam.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.residual.logit_lens import kl_from_final, lens_log_probs, read_streams
from core.interp.residual.readout import log_probs, readout
from core.models.dtype import autocast_bf16

INITS = ("zero", "least_squares")
RIDGE = 1e-2  # least-squares init: ridge penalty, as a fraction of the mean eigenvalue of X^T X


@dataclass(frozen=True)
class StreamData:
    """The stream at every point for a set of tokens: X [n_tokens, point, d_model] (every point but
    the last) and the final stream [n_tokens, d_model], float32."""

    X: torch.Tensor
    final: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return self.X.shape[0]

    def split(self, fraction: float, seed: int = 0) -> tuple[StreamData, StreamData]:
        """(train, held-out): the last `fraction` of tokens held out (text order kept: no overlap
        between the contexts of the two parts beyond their boundary)."""
        n_out = max(1, int(round(self.n_tokens * fraction)))
        cut = self.n_tokens - n_out
        return StreamData(self.X[:cut], self.final[:cut]), StreamData(self.X[cut:], self.final[cut:])


def stream_data(lm, rows: torch.Tensor, lengths: torch.Tensor | None = None, batch: int = 16,
                hooks=()) -> StreamData:
    """Streams of token rows [n, pos] (real lengths [n], default all), first token of each row left out."""
    n, pos = rows.shape
    lengths = torch.full((n,), pos) if lengths is None else lengths
    xs, finals = [], []
    for i in range(0, n, batch):
        streams, _ = read_streams(lm, rows[i: i + batch], hooks)  # [point, b, pos, d_model]
        for j in range(streams.shape[1]):
            keep = streams[:, j, 1: int(lengths[i + j])]  # [point, len - 1, d_model]
            xs.append(keep[:-1].transpose(0, 1))
            finals.append(keep[-1])
    return StreamData(torch.cat(xs), torch.cat(finals))


@dataclass(frozen=True)
class TrainPoint:
    step: int
    kl: tuple[float, ...]  # training KL per translated point, this batch


class TunedLens:
    """One affine translator per stream point (scikit-learn style: settings here, fit() learns A_, b_).

    bf16: True / False to run the translators and the readout in bfloat16 autocast or not; None (the
    default) uses bfloat16 where it measured faster on this CPU (core.models.dtype.autocast_bf16).
    fit() records the resolved choice as bf16_."""

    def __init__(self, steps: int = 250, lr: float = 2e-3, batch_tokens: int = 256,
                 init: str = "least_squares", seed: int = 0, bf16: bool | None = None):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, not {init!r}")
        if steps < 0 or batch_tokens < 1 or not lr > 0:
            raise ValueError("steps >= 0, batch_tokens >= 1 and lr > 0 are required")
        self.steps, self.lr, self.batch_tokens = steps, lr, batch_tokens
        self.init, self.seed, self.bf16 = init, seed, bf16

    # -- fitting ------------------------------------------------------------------------------------
    def _least_squares(self, X: torch.Tensor, final: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per point, the ridge-regression affine map x -> final, written as x + x A + b."""
        n, P, d = X.shape
        A = torch.zeros(P, d, d)
        b = torch.zeros(P, d)
        y = final.double()
        for p in range(P):
            x = X[:, p].double()
            mx, my = x.mean(0), y.mean(0)
            xc, yc = x - mx, y - my
            gram = xc.T @ xc  # [d, d]
            lam = RIDGE * gram.diagonal().mean().clamp_min(1e-12)
            W = torch.linalg.solve(gram + lam * torch.eye(d, dtype=gram.dtype), xc.T @ yc)  # [d, d]
            A[p] = (W - torch.eye(d, dtype=W.dtype)).float()
            b[p] = (my - mx @ W).float()
        return A, b

    def fit(self, lm, data: StreamData, progress: Callable[[TunedLens, TrainPoint], None] | None = None
            ) -> TunedLens:
        """Learn A_ [point, d_model, d_model] and b_ [point, d_model] on data; progress(self, point)
        is called every few steps (raise from it to stop: the lens keeps what it learned)."""
        start = time.perf_counter()
        n, P, d = data.X.shape
        if n == 0:
            raise ValueError("No tokens to train the tuned lens on.")
        if self.init == "least_squares":
            A0, b0 = self._least_squares(data.X, data.final)
        else:
            A0, b0 = torch.zeros(P, d, d), torch.zeros(P, d)
        self.A_, self.b_ = A0, b0
        self.history_: list[TrainPoint] = []
        self.steps_done_ = 0
        self.seconds_ = 0.0
        A = A0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        opt = torch.optim.Adam([A, b], lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        use_bf16 = self.bf16_ = autocast_bf16(self.bf16)
        every = max(1, self.steps // 50)
        try:
            for step in range(1, self.steps + 1):
                idx = torch.randint(n, (min(self.batch_tokens, n),), generator=gen)
                x, f = data.X[idx], data.final[idx]  # [B, P, d], [B, d]
                with torch.no_grad():
                    target = log_probs(lm, f)  # [B, d_vocab]
                    p_target = target.exp()
                opt.zero_grad(set_to_none=True)
                kls = []
                for p in range(P):  # one point at a time: [B, d_vocab] logits, not [B, P, d_vocab]
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                        h = x[:, p] + x[:, p] @ A[p] + b[p]
                        logits = readout(lm, h)
                    lp = torch.log_softmax(logits.float(), dim=-1)
                    kl = (p_target * (target - lp)).sum(-1).mean()
                    kl.backward()
                    kls.append(float(kl.detach()))
                opt.step()
                self.steps_done_ = step
                self.A_, self.b_ = A.detach().clone(), b.detach().clone()
                if progress is not None and (step % every == 0 or step == self.steps):
                    point = TrainPoint(step, tuple(kls))
                    self.history_.append(point)
                    self.seconds_ = time.perf_counter() - start
                    progress(self, point)
        finally:
            self.seconds_ = time.perf_counter() - start
        return self

    # -- using it ---------------------------------------------------------------------------------
    def translate(self, point: int, x: torch.Tensor) -> torch.Tensor:
        """x [..., d_model] at stream point index `point` (0 = embeddings) -> translated x."""
        return x + x @ self.A_[point] + self.b_[point]


def kl_per_layer(lm, data: StreamData, lens: TunedLens | None = None, batch: int = 512) -> np.ndarray:
    """Mean KL(final || lens) per stream point over data's tokens ([point], the last is 0):
    the logit lens if lens is None, else the tuned lens."""
    total = None
    for i in range(0, data.n_tokens, batch):
        streams = torch.cat([data.X[i: i + batch], data.final[i: i + batch, None]], dim=1)  # [B, P+1, d]
        logp = lens_log_probs(lm, streams.transpose(0, 1), None if lens is None else lens.translate)
        kl = kl_from_final(logp).sum(-1)  # [point]
        total = kl if total is None else total + kl
    return (total / max(1, data.n_tokens)).numpy()
