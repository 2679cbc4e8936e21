"""Every neuron of a layer at once: where it fires hardest, and how its activations are spread.

Run the model over a lot of text (the bundled corpus: 400 rows of 128 tokens, 51,200 tokens; or
text pasted for a hub model), stopping after the chosen layer, and read mlp.hook_post, the
activations after the nonlinearity: [n_tokens, d_mlp]. From that one matrix, for every neuron:
- its top-activating contexts: the k tokens with the highest activation, each shown with the tokens
  before it (what the neuron could see) and the neuron's activation on each of them;
- its most negative contexts (for gated MLPs the activation is negative as often as positive);
- a histogram of its activations over all tokens, its mean (the value mean-ablation uses) and how
  often it is positive.
The first token of each row (beginning of text) is left out: many neurons do something odd there.
Activations are kept as float16 while the neurons are ranked (51,200 x 512 takes 52 MB), and only the
summaries are returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.models import act_name

TOP_K = 16
BEFORE, AFTER = 12, 3  # context window around an activating token
BINS = 40


@dataclass(frozen=True)
class NeuronRecords:
    """Summaries of every neuron of one layer over a set of token rows."""

    layer: int
    rows: np.ndarray  # [n_rows, pos] int32 token ids (padding: -1)
    top_values: np.ndarray  # [d_mlp, k] highest activations, descending
    top_where: np.ndarray  # [d_mlp, k, 2] (row, pos) of each
    top_window: np.ndarray  # [d_mlp, k, BEFORE + 1 + AFTER] float16 activations around it (NaN: none)
    bottom_values: np.ndarray  # [d_mlp, k] lowest activations, ascending
    bottom_where: np.ndarray  # [d_mlp, k, 2]
    bottom_window: np.ndarray  # [d_mlp, k, BEFORE + 1 + AFTER]
    hist_counts: np.ndarray  # [d_mlp, BINS]
    hist_edges: np.ndarray  # [d_mlp, BINS + 1]
    mean: np.ndarray  # [d_mlp]
    frac_positive: np.ndarray  # [d_mlp]
    n_tokens: int

    @property
    def d_mlp(self) -> int:
        return self.top_values.shape[0]

    def window_tokens(self, row: int, pos: int) -> tuple[np.ndarray, int]:
        """(token ids of the window around (row, pos), with -1 outside the row; index of pos in it)."""
        ids = np.full(BEFORE + 1 + AFTER, -1, dtype=np.int64)
        for i, p in enumerate(range(pos - BEFORE, pos + AFTER + 1)):
            if 0 <= p < self.rows.shape[1]:
                ids[i] = self.rows[row, p]
        return ids, BEFORE


def _windows(acts: torch.Tensor, column: torch.Tensor, where: torch.Tensor) -> np.ndarray:
    """acts [d_mlp, n_tokens] (float16), column [n_rows, pos] (the acts column of each real token, -1
    elsewhere), where [d_mlp, k, 2] -> [d_mlp, k, window] activations around each (NaN outside)."""
    d_mlp, k, _ = where.shape
    n_pos = column.shape[1]
    offsets = torch.arange(-BEFORE, AFTER + 1)  # [window]
    rows = where[..., 0:1].expand(d_mlp, k, len(offsets))
    pos = where[..., 1:2] + offsets  # [d_mlp, k, window]
    inside = (pos >= 0) & (pos < n_pos)
    col = torch.where(inside, column[rows, pos.clamp(0, n_pos - 1)], -1)
    neuron = torch.arange(d_mlp)[:, None, None].expand_as(pos)
    vals = acts[neuron, col.clamp_min(0)].float()
    return torch.where(col >= 0, vals, torch.nan).to(torch.float16).numpy()


def neuron_records(lm, layer: int, rows: torch.Tensor, lengths: torch.Tensor | None = None, *,
                   k: int = TOP_K, batch: int = 50, hooks=()) -> NeuronRecords:
    """Run rows [n_rows, pos] (real lengths [n_rows], default all) up to `layer` and summarise
    every neuron of its MLP."""
    n_rows, n_pos = rows.shape
    lengths = torch.full((n_rows,), n_pos) if lengths is None else lengths
    real = torch.arange(n_pos)[None, :] < lengths[:, None]  # [n_rows, pos]
    real[:, 0] = False  # the beginning-of-text token
    n_tokens = int(real.sum())
    if n_tokens == 0:
        raise ValueError("No tokens to read the neurons on (each row needs more than its first token).")
    column = torch.full((n_rows, n_pos), -1, dtype=torch.long)
    column[real] = torch.arange(n_tokens)
    name = act_name("post", layer)
    acts = torch.empty(lm.cfg.d_mlp, n_tokens, dtype=torch.float16)  # neuron-major: fast per-neuron ops
    start = 0
    for i in range(0, n_rows, batch):
        with lm.hooks(list(hooks)), torch.no_grad():
            _, cache = lm.run_with_cache(rows[i: i + batch], names=[name], stop_at_layer=layer + 1)
        chunk = cache[name][real[i: i + batch]]  # [n_real, d_mlp]
        acts[:, start: start + len(chunk)] = chunk.T.to(torch.float16)
        start += len(chunk)
    token_of = torch.nonzero(real)  # [n_tokens, 2]: (row, pos) of each column
    kk = min(k, n_tokens)
    d_mlp = acts.shape[0]
    top_v, top_i, bot_v, bot_i = [], [], [], []
    counts = torch.zeros(d_mlp * BINS, dtype=torch.long)
    sums, positive = torch.zeros(d_mlp, dtype=torch.float64), torch.zeros(d_mlp)
    lo_all, hi_all = torch.zeros(d_mlp), torch.zeros(d_mlp)
    for j in range(0, d_mlp, 64):
        a = acts[j: j + 64].float()  # [c, n_tokens]
        v, x = a.topk(kk, dim=1)
        top_v.append(v), top_i.append(x)
        v2, x2 = a.topk(kk, dim=1, largest=False)
        bot_v.append(v2), bot_i.append(x2)
        sums[j: j + 64] = a.sum(1, dtype=torch.float64)
        positive[j: j + 64] = (a > 0).sum(1).float()
        lo, hi = v2[:, 0], v[:, 0]
        lo_all[j: j + 64], hi_all[j: j + 64] = lo, hi
        width = ((hi - lo) / BINS).clamp_min(1e-12)[:, None]
        b = ((a - lo[:, None]) / width).floor().long().clamp(0, BINS - 1)  # [c, n_tokens]
        b += (torch.arange(j, j + len(a)) * BINS)[:, None]
        counts += torch.bincount(b.flatten(), minlength=d_mlp * BINS)
    top_where = token_of[torch.cat(top_i)]  # [d_mlp, k, 2]
    bottom_where = token_of[torch.cat(bot_i)]
    edges = np.linspace(lo_all.numpy(), hi_all.numpy(), BINS + 1, axis=1)  # [d_mlp, BINS + 1]
    ids = torch.where(torch.arange(n_pos)[None, :] < lengths[:, None], rows, -1).to(torch.int32).numpy()
    return NeuronRecords(layer, ids, torch.cat(top_v).numpy(), top_where.numpy(),
                         _windows(acts, column, top_where), torch.cat(bot_v).numpy(), bottom_where.numpy(),
                         _windows(acts, column, bottom_where), counts.view(d_mlp, BINS).numpy(), edges,
                         (sums / n_tokens).numpy(), (positive / n_tokens).numpy(), n_tokens)
