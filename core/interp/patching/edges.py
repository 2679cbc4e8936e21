"""Patching edges, and the gradient of the metric at every edge: one forward pass for many edges.

An edge (sender -> receiver door, see core.interp.patching.graph) is patched by swapping what the
sender writes, *as that one receiver reads it*, for the source run's version:

    input[receiver] = stream - sum over patched senders s of (out_s - out_s in the source run)

Everything else reads the unpatched stream. Senders' outputs are taken from the run itself
(out_s of a head is z[:, :, h] @ W_O[h]), so a patched edge upstream changes what later senders
write, as in ACDC (Conmy et al., 2023). Each receiver door is recomputed from its own stream by
core.interp.patching.node_inputs; doors with nothing patched keep the model's own values.

Many hypotheses (sets of patched edges) run as rows of one batch, like every patch of the engine,
and start at the first position where the clean and corrupted prompts differ (nothing before it
can differ). The same forward pass, with a zero tensor added to every receiver's stream, gives by
backpropagation the gradient of the metric with respect to every receiver input at once: the
ingredient of edge attribution patching (EAP; Syed, Rager and Conmy, 2023) and of its integrated-
gradients version (EAP-IG; Hanna, Pezzelle and Belinkov, 2024).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.interp.patching.engine import PatchEngine
from core.interp.patching.graph import Graph, graph_of
from core.interp.patching.node_inputs import DOORS, door_input, head_inputs, mlp_output
from core.models import act_name

DENSE_FLOATS = 1 << 22  # below this many floats, every hypothesis's sender differences are stacked at once


class EdgeRunner:
    """Edge-patched runs of `target` with senders' outputs swapped for `source`'s."""

    def __init__(self, engine: PatchEngine, source: str = "corrupt", target: str = "clean"):
        self.engine, self.lm, self.source, self.target = engine, engine.lm, source, target
        self.graph: Graph = graph_of(self.lm)
        c = self.lm.cfg
        self.W_O = [self.lm.attention_weights(layer).W_O.detach() for layer in range(c.n_layers)]
        full = {which: self.sender_outputs(which) for which in {source, target}}  # [B, pos, sender, d]
        differ = torch.nonzero((full[source] != full[target]).flatten(2).any(-1).any(0)).flatten()
        # nothing before the first differing position can differ in any patched run
        self.start = int(differ[0]) if len(differ) else engine.task.n_pos - 1
        self.S = engine.task.n_pos - self.start
        self.outputs = {k: v[:, self.start:] for k, v in full.items()}
        self.n_forward = 0

    def sender_outputs(self, which: str) -> torch.Tensor:
        """What every sender writes in a cached run: [batch, pos, sender, d_model]."""
        cache = self.engine.caches[which]
        parts = [cache[act_name("resid_pre", 0)][:, :, None]]
        for layer in range(self.lm.cfg.n_layers):
            z = cache[act_name("z", layer)]  # [batch, pos, head, d_head]
            parts.append(torch.einsum("bshe,hed->bshd", z, self.W_O[layer]))
            parts.append(cache[act_name("mlp_out", layer)][:, :, None])
        return torch.cat(parts, dim=2)

    def rows_per_pass(self) -> int:
        c, g = self.lm.cfg, self.graph
        per_row = self.S * (g.n_senders * c.d_model * 2 + 6 * c.n_heads * c.d_model + c.d_mlp) \
            + 2 * c.n_layers * self.engine.task.n_pos * c.n_heads * c.d_head
        return max(1, self.engine.max_floats // per_row)

    # -- the hooks of one pass --------------------------------------------------------------------
    def _hooks(self, N: int, masks: torch.Tensor | None, leaves: dict | None, alphas: torch.Tensor | None):
        """masks [N, receiver, sender] (float 0/1) patch edges; leaves add a zero tensor with grad to
        every receiver stream (gradient mode); alphas [N] interpolate the embeddings source -> target.

        Rows are laid out prompt x N + hypothesis, viewed as [B, N, ...]. Only receivers with a patched
        edge are recomputed, each for the hypotheses that patch it (path patching patches one edge per
        hypothesis, ACDC many edges in one)."""
        lm, g, c = self.lm, self.graph, self.lm.cfg
        B, S, s, H = self.engine.task.n_batch, self.S, self.start, c.n_heads
        src = self.outputs[self.source]  # [B, S, sender, d]
        state: dict = {"out": [], "pre": {}, "attn": {}, "kv": {}}

        def rows(t):  # [R, ...] -> [B, N, ...]
            return t.view(B, N, *t.shape[1:])

        def deltas(r_idx: list[int], n_up: int):
            """For each receiver of r_idx with a patched edge: (j, rows ns, [B, k, S, d] the sum over its
            patched senders of (out - source out)), for the hypotheses ns that patch it."""
            m = masks[:, r_idx, :n_up]  # [N, r, u]
            active = m.any(-1)  # [N, r]
            if not bool(active.any()):
                return []
            dense = B * N * S * n_up * c.d_model <= DENSE_FLOATS
            if dense:  # every hypothesis's differences at once: [B, N, S, u, d]
                D_all = torch.stack(state["out"][:n_up], dim=-2) - src[:, None, :, :n_up]
            out = []
            for j in range(len(r_idx)):
                ns = torch.nonzero(active[:, j]).flatten()
                if not len(ns):
                    continue
                W = m[ns, j]  # [k, u]
                us = torch.nonzero(W.any(0)).flatten()
                if dense:
                    D = D_all[:, ns][:, :, :, us]
                else:
                    D = torch.stack([state["out"][int(u)][:, ns] for u in us], dim=-2) - src[:, None, :, us]
                out.append((j, ns, torch.einsum("ku,bksud->bksd", W[:, us], D)))
            return out

        def on_embed(act, hook):
            if alphas is not None:  # interpolate from the source's embeddings (alpha 0) to the target's
                a = rows(act)
                e_src = self.engine.caches[self.source][hook.name][:, None, s:]
                act = (e_src + alphas[None, :, None, None] * (a - e_src)).reshape(act.shape)
            state["out"].append(rows(act))
            state["pre"][0] = act
            return act

        def on_pre(act, hook):
            state["pre"][hook.layer] = act
            return act

        def on_q(act, hook):
            layer = hook.layer
            pre = rows(state["pre"][layer])  # [B, N, S, d]
            if leaves is not None:
                x = pre[:, :, :, None, None, :] + leaves["attn"][layer].view(B, N, S, H, 3, -1)
                q, k, v = head_inputs(lm, layer, x.reshape(B * N, S, H, 3, -1), start=s)
                state["kv"][layer] = (k, v)
                return q.to(act.dtype)
            n_up = g.head_sender(layer, 0)
            receivers = [(h, door) for h in range(H) for door in DOORS]
            updates = {door: [] for door in DOORS}
            for j, ns, delta in deltas([g.head_receiver(layer, h, d) for h, d in receivers], n_up):
                h, door = receivers[j]
                y = door_input(lm, layer, (pre[:, ns] - delta).reshape(-1, S, c.d_model), h, door, start=s)
                updates[door].append((ns, h, y.view(B, len(ns), S, -1)))
            state["kv"][layer] = updates
            return _write(act, updates["q"], B, N, S)

        def on_kv(door):
            def fn(act, hook):
                got = state["kv"].get(hook.layer)
                if leaves is not None:
                    out = act.clone()
                    out[:, -S:] = got["kv".index(door)].to(act.dtype)
                    return out
                return _write(act, got[door], B, N, S) if got and got[door] else act
            return fn

        def on_z(act, hook):
            out = torch.einsum("rshe,hed->rshd", act, self.W_O[hook.layer])  # [R, S, head, d]
            state["out"].extend(rows(out).unbind(-2))
            return act

        def on_attn_out(act, hook):
            state["attn"][hook.layer] = act
            return act

        def on_mlp_out(act, hook):
            layer = hook.layer
            stream = state["pre"][layer]  # what the MLP reads: the block input (+ attention, unless parallel)
            if not c.parallel_attn_mlp:
                stream = stream + state["attn"][layer]
            if leaves is not None:
                act = mlp_output(lm, layer, stream + leaves["mlp"][layer])
            else:
                for _, ns, delta in deltas([g.mlp_receiver(layer)], g.mlp_sender(layer)):
                    new = mlp_output(lm, layer, rows(stream)[:, ns] - delta)
                    act = rows(act).clone()
                    act[:, ns] = new.to(act.dtype)
                    act = act.view(B * N, *act.shape[2:])
            state["out"].append(rows(act))
            return act

        def on_final(act, hook):
            if leaves is not None:
                return act + leaves["logits"]
            for _, ns, delta in deltas([g.logits], g.n_senders):
                act = rows(act).clone()
                act[:, ns] = act[:, ns] - delta
                act = act.view(B * N, *act.shape[2:])
            return act

        hooks = [(act_name("resid_pre", 0), on_embed)]
        for layer in range(c.n_layers):
            if layer > 0:
                hooks.append((act_name("resid_pre", layer), on_pre))
            hooks += [(act_name("q", layer), on_q), (act_name("k", layer), on_kv("k")),
                      (act_name("v", layer), on_kv("v")), (act_name("z", layer), on_z),
                      (act_name("attn_out", layer), on_attn_out), (act_name("mlp_out", layer), on_mlp_out)]
        hooks.append((act_name("resid_post", c.n_layers - 1), on_final))
        return hooks

    # -- patched runs -----------------------------------------------------------------------------
    def run(self, masks, progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Metric [hypothesis, batch] with the edges of each mask [hypothesis, receiver, sender] patched."""
        masks = torch.as_tensor(np.asarray(masks), dtype=torch.float32)
        out = np.empty((len(masks), self.engine.task.n_batch))
        step = max(1, self.rows_per_pass() // self.engine.task.n_batch)
        for lo in range(0, len(masks), step):
            m = masks[lo: lo + step]
            hooks = self._hooks(len(m), m, None, None)
            with torch.no_grad():
                last = self.engine.forward(self.target, self.start, len(m), hooks)
            self.n_forward += 1
            out[lo: lo + len(m)] = self.engine.metric_rows(last, len(m)).numpy()
            if progress is not None:
                progress(min(1.0, (lo + len(m)) / len(masks)))
        return out

    def run_one(self, mask: np.ndarray) -> float:
        """Mean metric over the batch with one set of edges [receiver, sender] patched."""
        return float(self.run(mask[None])[0].mean())

    # -- gradients --------------------------------------------------------------------------------
    def gradients(self, steps: int = 1) -> dict:
        """Mean over `steps` interpolation points (alpha = k / steps, k = 1..steps: the embeddings
        moved from the source's to the target's) of the metric's gradient at every receiver stream:
        {"attn": [layer][batch, S, head, door, d], "mlp": [layer][batch, S, d], "logits": [batch, S, d]}."""
        c = self.lm.cfg
        B, S, H, d = self.engine.task.n_batch, self.S, c.n_heads, c.d_model
        alphas = torch.arange(1, steps + 1, dtype=torch.float32) / steps
        N = steps
        leaves = {"attn": [torch.zeros(B * N, S, H, 3, d, requires_grad=True) for _ in range(c.n_layers)],
                  "mlp": [torch.zeros(B * N, S, d, requires_grad=True) for _ in range(c.n_layers)],
                  "logits": torch.zeros(B * N, S, d, requires_grad=True)}
        hooks = self._hooks(N, None, leaves, alphas if steps > 1 else None)
        last = self.engine.forward(self.target, self.start, N, hooks, grad=True)
        self.n_forward += 1
        metric = self.engine.metric_rows(last, N)  # [N, B]
        metric.sum().backward()

        def mean(t):  # [B * N, ...] -> mean over the N steps: [B, ...]
            return t.grad.view(B, N, *t.shape[1:]).mean(1)
        return {"attn": [mean(t) for t in leaves["attn"]], "mlp": [mean(t) for t in leaves["mlp"]],
                "logits": mean(leaves["logits"])}

    def attribution(self, steps: int = 1) -> np.ndarray:
        """Estimated change of the mean metric when each edge alone is patched [receiver, sender]:
        (out_source - out_target) . gradient, summed over positions, mean over the batch."""
        g, c = self.graph, self.lm.cfg
        grads = self.gradients(steps)
        D = self.outputs[self.source] - self.outputs[self.target]  # [B, S, sender, d]
        B = D.shape[0]
        scores = np.zeros((g.n_receivers, g.n_senders))
        for layer in range(c.n_layers):
            n_up = g.head_sender(layer, 0)
            s = torch.einsum("bshcd,bsud->hcu", grads["attn"][layer], D[:, :, :n_up]) / B  # [head, door, u]
            for h in range(c.n_heads):
                for i, door in enumerate("qkv"):
                    scores[g.head_receiver(layer, h, door), :n_up] = s[h, i].numpy()
            n_up = g.mlp_sender(layer)
            scores[g.mlp_receiver(layer), :n_up] = (torch.einsum("bsd,bsud->u", grads["mlp"][layer],
                                                                 D[:, :, :n_up]) / B).numpy()
        scores[g.logits] = (torch.einsum("bsd,bsud->u", grads["logits"], D) / B).numpy()
        return np.where(g.valid, scores, 0.0)


def _write(act: torch.Tensor, updates: list, B: int, N: int, S: int) -> torch.Tensor:
    """act [R, P, head, d_head] (its last S positions are the suffix): write each (hypotheses ns,
    head h, values [B, k, S, d_head]) into its rows."""
    if not updates:
        return act
    out = act.clone()
    view = out.view(B, N, *out.shape[1:])  # [B, N, P, head, d_head]
    P = out.shape[1]
    pos = torch.arange(P - S, P)
    for ns, h, y in updates:  # y [B, k, S, d_head] -> rows ns, positions P-S.., head h, in one index_put
        view[:, ns[:, None], pos[None, :], h] = y.to(out.dtype)
    return out
