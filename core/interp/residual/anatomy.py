"""Stream anatomy: the residual stream is a sum, and here are its terms.

Each block reads the stream and adds two writes to it: the attention's output, then the MLP's
(models with parallel attention and MLP, like Pythia, add both to the same input). So

    stream after layer L = embeddings + sum over l <= L of (attn_out_l + mlp_out_l)

and the final stream is the embeddings plus every write. This module measures, per write:
- its size: the mean norm ||write|| over positions, next to the norm of the stream it is added to;
- its direction: the cosine between the write and the stream it reads (near 0: it adds something
  new; negative: it erases part of what is there), and between the write and the final stream (how
  much of it survives to the output's direction);
- the bookkeeping: the largest gap between "embeddings + every write" and the final stream, relative
  to the stream's size. It is rounding (about 1e-7) unless an intervention adds to the stream
  directly, which is then visible as a gap.

The beginning-of-text token is left out of the means by default: its stream is often far larger
than any other (a resting place for attention), and would swamp the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.models import act_name
from core.models.hook_names import stream_hook


@dataclass(frozen=True)
class StreamAnatomy:
    labels: tuple[str, ...]  # "embeddings", "attention 0", "MLP 0", ...
    kinds: tuple[str, ...]  # "embed", "attn", "mlp"
    layers: tuple[int | None, ...]
    write_norm: np.ndarray  # [write] mean ||write|| over positions
    input_norm: np.ndarray  # [write] mean ||stream read by the write|| (0 for the embeddings)
    after_norm: np.ndarray  # [write] mean ||stream after adding it||
    cos_input: np.ndarray  # [write] mean cosine(write, stream it reads); NaN for the embeddings
    cos_final: np.ndarray  # [write] mean cosine(write, final stream)
    sum_gap: float  # max over positions of ||embeddings + writes - final|| / ||final||
    n_positions: int


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)


def stream_anatomy(lm, tokens: torch.Tensor, *, skip_first: bool = True, hooks: Sequence = ()
                   ) -> StreamAnatomy:
    """Anatomy of the stream of one prompt, tokens [1, pos] (needs 2 tokens with skip_first)."""
    cfg = lm.cfg
    names = [stream_hook(-1)]
    for L in range(cfg.n_layers):
        names += [act_name("resid_pre", L), act_name("attn_out", L), act_name("mlp_out", L),
                  act_name("resid_post", L)]
        if cfg.has_resid_mid:
            names.append(act_name("resid_mid", L))
    with lm.hooks(list(hooks)), torch.no_grad():
        # no logits wanted: a remote model then sends back only these activations
        _, cache = lm.run_with_cache(tokens, names=list(dict.fromkeys(names)), stop_at_layer=cfg.n_layers)
    start = 1 if skip_first and tokens.shape[1] > 1 else 0
    get = lambda name: cache[name][0, start:].double()  # noqa: E731  [pos, d_model]
    final = get(stream_hook(cfg.n_layers - 1))
    rows = []  # (label, kind, layer, write, input, after)
    embed = get(stream_hook(-1))
    rows.append(("embeddings", "embed", None, embed, torch.zeros_like(embed), embed))
    for L in range(cfg.n_layers):
        pre, post = get(act_name("resid_pre", L)), get(act_name("resid_post", L))
        attn, mlp = get(act_name("attn_out", L)), get(act_name("mlp_out", L))
        mid = get(act_name("resid_mid", L)) if cfg.has_resid_mid else pre + attn
        rows.append((f"attention {L}", "attn", L, attn, pre, mid))
        rows.append((f"MLP {L}", "mlp", L, mlp, mid if cfg.has_resid_mid else pre, post))
    total = sum(r[3] for r in rows)
    gap = float(((total - final).norm(dim=-1) / final.norm(dim=-1).clamp_min(1e-12)).max())
    mean = lambda t: float(t.mean())  # noqa: E731
    cos_input = np.array([np.nan if kind == "embed" else mean(_cos(w, i)) for _, kind, _, w, i, _ in rows])
    return StreamAnatomy(
        tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows),
        np.array([mean(r[3].norm(dim=-1)) for r in rows]), np.array([mean(r[4].norm(dim=-1)) for r in rows]),
        np.array([mean(r[5].norm(dim=-1)) for r in rows]), cos_input,
        np.array([mean(_cos(r[3], final)) for r in rows]), gap, int(final.shape[0]))
