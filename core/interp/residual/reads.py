"""The residual-stream results from small reads, for a model whose weights are somewhere else.

A model on NDIF (core.models.nnsight_backend.NNsightLM, remote=True) keeps its weights on the
server, and a request should bring back kilobytes, not the stream of every layer at every position
(for Llama-3.1-70B that is 80 layers x 8192 numbers per token). So the same results are assembled
from what core.models.backend's helpers return, each computed where the model is:

- logit lens: `lens_logits` pushes the stream at each layer through the final norm and the
  unembedding on the server and returns the top 5 tokens (and, in a second request, the target
  token) per layer and position. Each row of the request reads one position, so the prompt is sent
  once per position. What does not come back is the whole distribution, so the KL divergence to
  the output (which needs every token's probability) is not computed here.
- direct logit attribution (core.interp.residual.dla): the answer direction needs two columns of
  W_U and the final norm's gamma and beta (`readout_weights`); the frozen scale s is read off the
  model's own final norm: normalized - beta = gamma * centre(x) / s, so
  s = ||gamma * centre(x)|| / ||normalized - beta|| for the final stream x at the answer position
  (no epsilon needed). Then each part is a dot product with w = centre(gamma * d) / s: the
  embeddings and every MLP's write are read at the answer position (`read_at`, one vector each),
  every head's output is projected on w on the server (`head_projections`: one number per head),
  and the biases come with the readout weights. The model's own logit difference comes from
  `lens_logits` at the last layer (which is the model's output). Four requests in all.
  The accumulated residual is the running sum of the parts (the stream is exactly that sum); with
  interventions active something else is added to the stream, so the stream itself is read at every
  layer instead.
- the ground truth over a task set: the same, with one row per prompt.

On a HookedLM the page computes these from whole caches and the weights in this process
(core.interp.residual.logit_lens, .dla); the tests check that both ways give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.interp.residual.anatomy import StreamAnatomy, stream_anatomy
from core.interp.residual.dla import DLAResult
from core.interp.residual.ground_truth import TaskTruth
from core.interp.residual.logit_lens import TOP_K, LensGrid, stream_points
from core.interp.residual.tasks import TaskSet
from core.interp.residual.verdicts import Readability, readability, writers
from core.models import act_name
from core.models.backend import head_projections, lens_logits, read_at, readout_weights
from core.models.hook_names import stream_hook
from core.models.hooked_lm import has_weights

FINAL_NORM = "ln_final.hook_normalized"
# A read that would bring back more than this many bytes is not made on a model without its weights
# here (a page says so, with the size): the stream anatomy, and prompts beyond this in a task set.
MAX_READ_BYTES = 32_000_000
FLOAT_BYTES = 4


# -- the logit lens --------------------------------------------------------------------------------------
def lens_grid(lm, tokens: torch.Tensor, target_ids: Sequence[int] | torch.Tensor, *, hooks: Sequence = (),
              k: int = TOP_K) -> LensGrid:
    """The logit lens of one prompt, tokens [1, pos], from two lens requests (top k, then the targets);
    kl_to_final is NaN (it needs the whole distribution)."""
    tokens = torch.as_tensor(tokens)[:1]
    n_pos = tokens.shape[1]
    targets = torch.as_tensor(list(target_ids) if not torch.is_tensor(target_ids) else target_ids)
    if targets.shape != (n_pos,):
        raise ValueError(f"need one target id per position ({n_pos}), got {tuple(targets.shape)}")
    points = stream_points(lm)
    rows = tokens.repeat(n_pos, 1)  # [pos, pos]: row p reads position p
    positions = torch.arange(n_pos)
    with lm.hooks(list(hooks)):
        top = lens_logits(lm, rows, points, positions, top_k=k)  # ids [point, pos, k]
        target = lens_logits(lm, rows, points, positions, token_ids=targets[:, None])  # [point, pos, 1]
    return LensGrid("logit", tuple(points), tuple(lm.to_str_tokens(tokens[0])), targets.numpy(),
                    target.log_probs[..., 0].exp().numpy(), top.ids.numpy(), top.log_probs.exp().numpy(),
                    np.full((len(points), n_pos), np.nan))


def final_top(lm, tokens: torch.Tensor, hooks: Sequence = ()) -> int:
    """The model's own top prediction after the last token (the lens at the last layer)."""
    with lm.hooks(list(hooks)):
        return int(lens_logits(lm, torch.as_tensor(tokens)[:1], [lm.cfg.n_layers - 1], top_k=1).ids[0, 0, 0])


# -- direct logit attribution ----------------------------------------------------------------------------
def dla_names(lm, read_stream: bool) -> list[str]:
    """The vectors one row of DLA reads: embeddings, every MLP's write, the final stream and norm
    (and every stream point, when interventions write to the stream)."""
    names = ["hook_embed"] + (["hook_pos_embed"] if "hook_pos_embed" in lm.hook_names() else [])
    names += [act_name("mlp_out", L) for L in range(lm.cfg.n_layers)]
    last = [stream_hook(lm.cfg.n_layers - 1)]
    names += [stream_hook(p) for p in stream_points(lm)] if read_stream else last
    return list(dict.fromkeys(names + [FINAL_NORM]))


def _centre(x: torch.Tensor, normalization: str) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True) if normalization != "rmsnorm" else x


def direct_logit_attribution(lm, tokens: torch.Tensor, positions: Sequence[int] | torch.Tensor,
                             answer_ids: Sequence[int] | torch.Tensor,
                             other_ids: Sequence[int] | torch.Tensor, *, answer: str = "",
                             other: str = "", hooks: Sequence = ()) -> DLAResult:
    """core.interp.residual.dla.direct_logit_attribution from four small requests (module docstring)."""
    cfg = lm.cfg
    positions = torch.as_tensor(list(positions) if not torch.is_tensor(positions) else positions)
    a_ids = torch.as_tensor(list(answer_ids) if not torch.is_tensor(answer_ids) else answer_ids)
    b_ids = torch.as_tensor(list(other_ids) if not torch.is_tensor(other_ids) else other_ids)
    batch = len(positions)
    ids = torch.unique(torch.cat([a_ids, b_ids]))  # [k]
    col = {int(t): i for i, t in enumerate(ids)}
    w = readout_weights(lm, ids)
    a_col = torch.tensor([col[int(t)] for t in a_ids])
    b_col = torch.tensor([col[int(t)] for t in b_ids])
    d = (w.W_U[:, a_col] - w.W_U[:, b_col]).T.double()  # [batch, d_model]: W_U[:, a] - W_U[:, b] per row
    points = stream_points(lm)
    names = dla_names(lm, read_stream=bool(hooks))
    final_name = stream_hook(cfg.n_layers - 1)
    with lm.hooks(list(hooks)):
        got = {n: v.double() for n, v in read_at(lm, tokens, names, positions).items()}  # [batch, d_model]
        gamma = w.ln_weight.double()
        beta = None if w.ln_bias is None else w.ln_bias.double()
        shift = got[FINAL_NORM] - (beta if beta is not None else 0.0)
        scale = ((gamma * _centre(got[final_name], cfg.normalization)).norm(dim=-1, keepdim=True)
                 / shift.norm(dim=-1, keepdim=True).clamp_min(1e-30))  # [batch, 1]: the frozen scale
        w_eff = _centre(gamma * d, cfg.normalization) / scale  # [batch, d_model]: read(x) = x . w_eff
        heads = head_projections(lm, tokens, list(range(cfg.n_layers)), w_eff.float(), positions).double()
        lens = lens_logits(lm, tokens, [cfg.n_layers - 1], positions,
                           token_ids=torch.stack([a_ids, b_ids], 1))
    total = lens.logits[0, :, 0].double() - lens.logits[0, :, 1].double()  # [batch]

    def read(x: torch.Tensor) -> torch.Tensor:  # [batch, d_model] -> [batch]
        return (x * w_eff).sum(-1)

    labels, kinds, layers, head_ids, values = [], [], [], [], []

    def add(label, kind, layer, head, value):  # value [batch]
        labels.append(label), kinds.append(kind), layers.append(layer), head_ids.append(head)
        values.append(value)

    add("token embeddings", "embed", None, None, read(got["hook_embed"]))
    if "hook_pos_embed" in got:
        add("position embeddings", "pos_embed", None, None, read(got["hook_pos_embed"]))
    head_table = np.zeros((cfg.n_layers, cfg.n_heads))
    running = [sum(values)]  # the accumulated residual at each stream point, from the parts
    for L in range(cfg.n_layers):
        for h in range(cfg.n_heads):
            add(f"head {L}.{h}", "head", L, h, heads[L, :, h])
            head_table[L, h] = float(heads[L, :, h].mean())
        if w.b_O is not None:
            add(f"attention bias {L}", "attn_bias", L, None, read(w.b_O[L].double().expand(batch, -1)))
        add(f"MLP {L}", "mlp", L, None, read(got[act_name("mlp_out", L)]))
        running.append(sum(values))
    if hooks:  # what the hooks added straight to the stream (steering vectors, patches)
        add("added by interventions", "hooks", None, None, read(got[final_name]) - sum(values))
    bias = torch.zeros(batch, dtype=torch.float64)
    if beta is not None:
        bias = bias + (beta * d).sum(-1)
    if w.b_U is not None:
        bias = bias + (w.b_U[a_col].double() - w.b_U[b_col].double())
    add("final norm and unembedding biases", "final_bias", None, None, bias)
    if hooks:
        accumulated = np.array([float((read(got[stream_hook(p)]) + bias).mean()) for p in points])
    else:
        accumulated = np.array([float((r + bias).mean()) for r in running])
    vals = np.array([float(v.mean()) for v in values])
    return DLAResult(answer, other, tuple(labels), tuple(kinds), tuple(layers), tuple(head_ids), vals,
                     float(total.mean()), head_table, accumulated, tuple(points), int(batch))


def dla_row_bytes(lm, hooks: bool = False) -> int:
    """Bytes one row of DLA brings back (its read_at vectors dominate)."""
    return len(dla_names(lm, hooks)) * lm.cfg.d_model * FLOAT_BYTES


# -- the ground truth over a task set ------------------------------------------------------------------
def readable_on(lm, ts: TaskSet, hooks: Sequence = ()) -> Readability:
    """Readability of the answer under the logit lens, at each prompt's answer position."""
    points = stream_points(lm)
    with lm.hooks(list(hooks)):
        top = lens_logits(lm, ts.tokens, points, ts.positions, top_k=1)  # ids [point, batch, 1]
        prob = lens_logits(lm, ts.tokens, points, ts.positions, token_ids=ts.answer_ids[:, None])
    return readability(top.ids[..., 0].numpy(), prob.log_probs[..., 0].exp().numpy(), ts.answer_ids.numpy(),
                       points, lens="logit", answer=ts.answer)


def task_prompts(lm, hooks: bool = False, limit: int = MAX_READ_BYTES) -> int:
    """How many prompts of a task set one DLA request may read within `limit` bytes."""
    return max(1, limit // dla_row_bytes(lm, hooks))


def task_truth(lm, ts: TaskSet, hooks: Sequence = ()) -> TaskTruth:
    """core.interp.residual.ground_truth.task_truth from small reads (the logit lens only)."""
    dla = direct_logit_attribution(lm, ts.tokens, ts.positions, ts.answer_ids, ts.other_ids,
                                   answer=ts.answer, other=ts.other, hooks=hooks)
    return TaskTruth(ts.task, ts.n, readable_on(lm, ts, hooks), None, dla, writers(dla))


# -- the stream anatomy -----------------------------------------------------------------------------------
def anatomy_bytes(lm, n_pos: int) -> int:
    """What the stream anatomy reads: five (four without resid_mid) full vectors per layer and position."""
    per_layer = 5 if lm.cfg.has_resid_mid else 4
    return (1 + per_layer * lm.cfg.n_layers) * n_pos * lm.cfg.d_model * FLOAT_BYTES


def anatomy_fits(lm, n_pos: int) -> bool:
    return has_weights(lm) or anatomy_bytes(lm, n_pos) <= MAX_READ_BYTES


def anatomy(lm, tokens: torch.Tensor, *, skip_first: bool = True, hooks: Sequence = ()) -> StreamAnatomy:
    """The stream anatomy (core.interp.residual.anatomy) on any backend, when it fits (anatomy_fits)."""
    if not anatomy_fits(lm, tokens.shape[1]):
        raise ValueError(f"The stream anatomy would read {anatomy_bytes(lm, tokens.shape[1]) / 1e6:,.0f} MB "
                         f"from this model (more than {MAX_READ_BYTES / 1e6:,.0f} MB).")
    return stream_anatomy(lm, tokens, skip_first=skip_first, hooks=hooks)
