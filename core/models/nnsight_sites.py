"""Where each of our hook names lives in an nnsight-wrapped model, and what a trace body does there.

nnsight speaks in module paths; our hook names are TransformerLens's. `hook_map` builds the table for
one model from the same architecture adapters HookedLM uses (core.models.adapters): a `Point` names
the module, whether the value is its input or output, which part of it (the tensor, output[1] for the
attention pattern, or the heads of z), and where the forward pass produces it, so one trace can visit
every requested point in order.

`visit`, `logits_out` and `head_project` run inside the trace, here or on NDIF's servers (the
project's packages travel with a remote request, see core.models.nnsight_backend), so they take
plain data and tensors only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.adapters import adapter_class
from core.models.backend import gather_at, write_into
from core.models.dispatch import HookPoint
from core.models.hook_names import act_name
from core.models.loss import next_token_loss

UNSUPPORTED_SITES = ("q", "k", "v", "attn_scores")  # inside the attention function: no module boundary
READ_ONLY_SITES = ("pattern", "resid_mid")
STAGES = {"resid_pre": 0, "z": 1, "attn_out": 2, "pattern": 2, "resid_mid": 3, "pre": 4, "post": 5,
          "mlp_out": 6, "resid_post": 7}


@dataclass(frozen=True)
class Point:
    """A hook point as nnsight sees it: a module path, its input or output, and which part of it."""

    path: str
    io: str  # "input" or "output"
    slot: str  # "tensor" (the value, or its first element), "second" (output[1]), "heads" (z)
    order: tuple[int, int]  # (layer, stage): the forward pass produces points in this order


def hook_map(module: torch.nn.Module) -> dict[str, Point]:
    """Every hook name this model offers -> its Point, from the architecture adapter's module map."""
    adapter = adapter_class(module.config.model_type)(module)
    cfg = adapter.config()
    paths = {id(m): name for name, m in module.named_modules()}
    out: dict[str, Point] = {"hook_embed": Point(paths[id(adapter.embed())], "output", "tensor", (-1, 0))}
    if adapter.pos_embed() is not None:
        out["hook_pos_embed"] = Point(paths[id(adapter.pos_embed())], "output", "tensor", (-1, 1))
    out_proj = adapter.target_roles["attn_out"][0]  # relative to a block, e.g. "self_attn.o_proj"
    for L in range(cfg.n_layers):
        m = adapter.block_modules(L)
        block = paths[id(m.block)]
        where = {
            "resid_pre": (block, "input", "tensor"),
            "z": (f"{block}.{out_proj}", "input", "heads"),
            "attn_out": (paths[id(m.attn)], "output", "tensor"),
            "pattern": (paths[id(m.attn)], "output", "second"),
            "pre": (paths[id(m.mlp_in)], "output", "tensor"),
            "post": (paths[id(m.mlp_out)], "input", "tensor"),
            "mlp_out": (paths[id(m.mlp)], "output", "tensor"),
            "resid_post": (block, "output", "tensor"),
        }
        if cfg.has_resid_mid:
            where["resid_mid"] = (paths[id(m.ln2)], "input", "tensor")
        for site, (path, io_, slot) in where.items():
            out[act_name(site, L)] = Point(path, io_, slot, (L, STAGES[site]))
    out["ln_final.hook_normalized"] = Point(paths[id(adapter.ln_final())], "output", "tensor",
                                            (cfg.n_layers, 0))
    return out


def _slot_get(value, slot: str, n_heads: int) -> torch.Tensor:
    if slot == "second":
        return value[1]
    act = value[0] if isinstance(value, tuple) else value
    if slot == "heads":  # [batch, pos, head * d_head] -> [batch, pos, head, d_head]
        return act.view(act.shape[0], act.shape[1], n_heads, -1)
    return act


def _slot_put(value, slot: str, act: torch.Tensor):
    if slot == "heads":
        act = act.reshape(act.shape[0], act.shape[1], -1)
    return (act, *value[1:]) if isinstance(value, tuple) else act


def visit(value, entries, pos_offset: int, n_heads: int, lens_fn=None, weight_of=None):
    """What a request does at one module location, inside the trace (here or on the server).

    entries: [(name, slot, writes, read)] for the hook names living at this location; writes are
    (mode, value, start_pos, positions, head) tuples or ("fn", callable, layer) for a local Python
    hook; read is None, ("all",), ("at", positions), ("lens", positions, ids, top_k) (the logit lens,
    through lens_fn) or ("proj", positions, vectors, in_out, path) (each head's output projected on
    a vector, with the weight weight_of(path)). Writes run first and reads see their result (as in
    HookedLM). Returns (new value or None, {key: saved}).
    """
    saved, new = {}, None
    for name, slot, writes, read in entries:
        act = _slot_get(value if new is None else new, slot, n_heads)
        changed = False
        for w in writes:
            if w[0] == "fn":
                out = w[1](act, HookPoint(name, w[2], pos_offset))
            else:
                out = write_into(act, w[0], w[1], w[2], w[3], w[4], pos_offset)
            if out is not None:
                act, changed = out, True
        if changed:
            new = _slot_put(value if new is None else new, slot, act)
        if read is None:
            continue
        if read[0] == "all":
            saved[name] = act.detach().cpu()
        elif read[0] == "at":
            saved[name] = gather_at(act, name, read[1].to(act.device)).detach().cpu()
        elif read[0] == "lens":
            rows = torch.arange(act.shape[0], device=act.device)
            logits = lens_fn(act[rows, read[1].to(act.device)]).float()  # [batch, d_vocab]
            ids = logits.topk(read[3], dim=-1).indices if read[2] is None else read[2].to(act.device)
            saved["lens:" + name] = (ids.cpu(), logits.gather(-1, ids).cpu(),
                                     logits.log_softmax(-1).gather(-1, ids).cpu())
        elif read[0] == "proj":
            flat = act.reshape(act.shape[0], act.shape[1], -1)  # [batch, pos, head * d_head]
            saved["proj:" + name] = head_project(flat, weight_of(read[4]), read[3], read[1], read[2], n_heads)
    return new, saved


def logits_out(logits: torch.Tensor, spec, tokens: torch.Tensor):
    """The part of the logits a request wants: ("all",), ("at", positions[, ids]) or ("loss",)."""
    if spec[0] == "all":
        return logits.detach().cpu()
    if spec[0] == "loss":
        return next_token_loss(logits, tokens.to(logits.device), per_token=True).detach().cpu()
    rows = torch.arange(logits.shape[0], device=logits.device)
    at = logits[rows, spec[1].to(logits.device)].float()  # [batch, d_vocab]
    return (at if spec[2] is None else at.gather(-1, spec[2].to(at.device))).detach().cpu()


def head_project(z: torch.Tensor, weight: torch.Tensor, in_out: bool, positions: torch.Tensor,
                 vectors: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Each head's output at one position per row, projected on a vector per row: [batch, head].

    z [batch, pos, head * d_head]; weight: the output projection (Conv1D [head * d_head, d_model]
    when in_out, else Linear [d_model, head * d_head]); vectors [batch, d_model]."""
    rows = torch.arange(z.shape[0], device=z.device)
    zp = z[rows, positions.to(z.device)].float()  # [batch, head * d_head]
    W = (weight if in_out else weight.T).float()  # [head * d_head, d_model]
    Wv = W @ vectors.to(W.device).float().T  # [head * d_head, batch]
    per = zp * Wv.T  # [batch, head * d_head]
    return per.view(z.shape[0], n_heads, -1).sum(-1).cpu()
