"""The logit lens (nostalgebraist, 2020): read every layer's residual stream as if it were the last.

The stream after layer L is a vector in the same space as the final stream, so we can push it
through the model's own last step (final norm, unembedding, softmax) and ask "what would the model
predict if it stopped here?". Doing that for every layer and every position gives a grid:

    grid[L, p] = softmax(norm(stream_L[p]) @ W_U)      # [layer, pos, d_vocab]

Rows are the stream points: the embeddings (before layer 0) and the stream after each layer; at
the last row the lens IS the model's output (tested to equal the logits exactly). Reading down a
column shows where a prediction forms. Each cell is coloured by the probability of a target token
(the answer you care about, or the text's actual next token) and lists the lens's top 5 tokens.

Where the logit lens misleads: early layers need not use the final layer's basis, so a layer can
hold the answer in a form the unembedding cannot read yet. The tuned lens (core.interp.residual.
tuned_lens) learns a small translation per layer to correct for that; the KL divergence from each
lens to the final output says how far off each one is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.residual.readout import log_probs
from core.models.hook_names import stream_hook, stream_layers

TOP_K = 5
Translate = Callable[[int, torch.Tensor], torch.Tensor]  # (stream point, x) -> translated x


@dataclass(frozen=True)
class LensGrid:
    """One lens read at every stream point and position of one prompt."""

    lens: str  # "logit" or "tuned"
    layers: tuple[int, ...]  # stream points, EMBEDDINGS (-1) first
    str_tokens: tuple[str, ...]  # [pos]
    target_ids: np.ndarray  # [pos] the token whose probability colours each column
    target_prob: np.ndarray  # [point, pos]
    top_ids: np.ndarray  # [point, pos, k]
    top_probs: np.ndarray  # [point, pos, k]
    kl_to_final: np.ndarray  # [point, pos] KL(final || lens), nats; 0 on the last row

    @property
    def final_top(self) -> np.ndarray:
        """The model's own top prediction at each position: [pos]."""
        return self.top_ids[-1, :, 0]


def stream_points(lm) -> list[int]:
    """EMBEDDINGS, 0, ..., n_layers - 1: every point where the stream can be read."""
    return stream_layers(lm.cfg.n_layers)


def read_streams(lm, tokens: torch.Tensor, hooks: Sequence = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """(streams [point, batch, pos, d_model] float32, logits [batch, pos, d_vocab]) under `hooks`."""
    names = [stream_hook(p) for p in stream_points(lm)]
    with lm.hooks(list(hooks)), torch.no_grad():
        logits, cache = lm.run_with_cache(tokens, names=names)
    return torch.stack([cache[n].float() for n in names]), logits.float()


def lens_log_probs(lm, streams: torch.Tensor, translate: Translate | None = None) -> torch.Tensor:
    """log p of the lens at every stream point: streams [point, ..., d_model] -> [point, ..., d_vocab].

    The last point is read as it is (it is the model's output); translate, if given, maps each
    earlier point's stream first (the tuned lens)."""
    out = []
    last = streams.shape[0] - 1
    with torch.no_grad():
        for i, x in enumerate(streams):
            if translate is not None and i < last:
                x = translate(i, x)
            out.append(log_probs(lm, x))
    return torch.stack(out)


def kl_from_final(logp: torch.Tensor) -> torch.Tensor:
    """KL(final || lens) per point and position: logp [point, ..., d_vocab] -> [point, ...] nats."""
    final = logp[-1]
    return (final.exp() * (final - logp)).sum(-1).clamp_min(0.0)


def lens_grid(lm, tokens: torch.Tensor, target_ids: Sequence[int] | torch.Tensor, *,
              translate: Translate | None = None, lens: str = "logit", hooks: Sequence = (),
              k: int = TOP_K) -> LensGrid:
    """The lens grid of one prompt, tokens [1, pos]; target_ids [pos] colour the cells.

    One stream point at a time, so a big vocabulary needs [pos, d_vocab] at once, not
    [point, pos, d_vocab]."""
    streams, _ = read_streams(lm, tokens, hooks)  # [point, 1, pos, d_model]
    n_points, n_pos = streams.shape[0], tokens.shape[1]
    targets = torch.as_tensor(list(target_ids) if not torch.is_tensor(target_ids) else target_ids)
    if targets.shape != (n_pos,):
        raise ValueError(f"need one target id per position ({n_pos}), got {tuple(targets.shape)}")
    final = lens_log_probs(lm, streams[-1:, 0])[0]  # [pos, d_vocab]
    p_final = final.exp()
    target, top_p, top_i, kl = [], [], [], []
    for i in range(n_points):
        if i == n_points - 1:
            logp = final
        else:
            x = streams[i, 0] if translate is None else translate(i, streams[i, 0])
            with torch.no_grad():
                logp = log_probs(lm, x)  # [pos, d_vocab]
        probs = logp.exp()
        p, ids = probs.topk(min(k, probs.shape[-1]), dim=-1)  # [pos, k]
        top_p.append(p), top_i.append(ids)
        target.append(probs.gather(-1, targets[:, None])[:, 0])
        kl.append((p_final * (final - logp)).sum(-1).clamp_min(0.0))
    return LensGrid(lens, tuple(stream_points(lm)), tuple(lm.to_str_tokens(tokens[0])),
                    targets.numpy(), torch.stack(target).numpy(), torch.stack(top_i).numpy(),
                    torch.stack(top_p).numpy(), torch.stack(kl).numpy())


def next_token_targets(tokens: torch.Tensor, fill: int) -> torch.Tensor:
    """The text's own next token at each position, tokens [1, pos] -> [pos]; the last position has
    none and gets `fill` (e.g. the model's own top prediction there)."""
    row = tokens[0]
    return torch.cat([row[1:], torch.tensor([fill], dtype=row.dtype)])
