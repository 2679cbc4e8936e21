"""Steering: add a direction to the residual stream while the model writes, and watch the text move.

The residual stream is the running sum every layer reads from and writes to. If a concept such as
"positive mood" is stored along a direction v in it, then adding c * v at layer L makes every later
layer read "more positive" than the text says, and the model writes accordingly. Steering needs no
training and no gradient: one vector, one coefficient, one hook.

Where the vector comes from:
1. Contrast pairs, mean difference (CAA, Rimsky et al. 2024): run pairs of texts that differ only in
   the concept ("Mary was happy at the park." / "Mary was sad at the park."), read the residual
   stream at layer L, and take mean(plus activations) - mean(minus activations). What the pairs share
   cancels; what differs remains. Each text is summarised by the mean of its activations from the
   first token where the pair differs on (CAA reads exactly that token), or by its last token.
2. One pair (ActAdd, Turner et al. 2023): the same difference from a single pair. The paper adds the
   whole [pos, d_model] difference at the prompt's first positions; we average it over positions,
   so that it is one vector that can be added anywhere, like the others. Noisier than many pairs.
3. A probe direction or an SAE feature's decoder row (handed over from those pages): a direction
   someone else found. Its length means nothing, so we rescale it to a tenth of the typical size
   of the residual stream at its hook point: coefficient 1 is a push of 10% of the stream, about
   the size of a mean-difference vector, so the same coefficients mean about the same push.

Where: "layer L" is the residual stream after block L (the lab's convention everywhere), so the
vector is read and added at `blocks.{L}.hook_resid_post`, which is exactly what block L + 1 reads;
"the embeddings" is the stream before block 0. The hook returns act + c * v, at every position or
only from position p on (during generation with the KV cache, `hook.pos_offset` says which absolute
position each step is). Coefficient 0 returns the activations untouched, so it changes nothing,
exactly. The hook lives only inside `with lm.hooks(...)`, in this thread: other sessions using the
same cached model never see it. The push is an activation write as data (core.models.backend.Write:
"add this at that hook point from position p on"), so the same code steers a model on this machine
and one on NDIF, where the vector travels with the request and is added on the server.

How we know it worked (core.interp.steering.effect, .verdict): the probability the model gives to
the concept's words (positive vs negative) where such a word comes next, their logit difference, and
a fluency proxy (the perplexity of the steered text under the unsteered model), as functions of c.
Two controls: the opposite sign (should move the other way) and a random vector of the same norm
(should do little; if it does as much, the "concept" was just a big push). Steering "worked" only
when the concept moves, clearly more than under the random push, and the text stays fluent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch

from core.interp.steering.targets import common_prefix
from core.models.backend import Write
from core.models.dispatch import HookFn, HookPoint
from core.models.generation import Generation, SamplingSettings
from core.models.hook_names import layer_of, stream_hook

DIRECTION_SCALE = 0.1  # a found direction is rescaled to this fraction of the stream's typical norm
POSITION_MODES = ("diff", "last")  # how one text is summarised: from the first differing token on, or last
TEXT = SamplingSettings(max_new_tokens=40, stop_at_eos=False)  # generate_steered's default


@dataclass(frozen=True)
class SteeringVector:
    """A direction to add at one hook point. coefficient * vector is what the hook adds."""

    vector: torch.Tensor  # [d_model]
    hook_name: str
    method: str  # "mean difference (CAA)", "one pair (ActAdd)", "probe", "sae", "random control"
    label: str  # what the + direction means, e.g. "positive - negative"
    n_pairs: int = 0

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def opposite(self) -> SteeringVector:
        """The same vector with the opposite sign: a control that should move the effect the other way."""
        return replace(self, vector=-self.vector, method=f"{self.method}, opposite sign")


# -- building vectors ---------------------------------------------------------------------------------
def _stop_after(names: Sequence[str]) -> int | None:
    """The block before which a pass reading only `names` may stop (no logits are computed, and a
    remote model sends back only these activations); None if one of them is after the last block."""
    layers = [layer_of(n) for n in names]
    return None if any(x is None for x in layers) else max(layers) + 1


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def same_tokens_message(lm, pairs: Sequence[tuple[str, str]], *, cut: bool) -> str:
    """Why pairs that the model reads as the same tokens cannot make a vector."""
    shown = "; ".join(f"{_short(p)!r} / {_short(m)!r}" for p, m in pairs[:3])
    why = (f": both sides are cut to the model's context window of {lm.cfg.n_ctx} tokens and differ "
           "only after it. Make the texts differ earlier, or shorten them" if cut else "")
    return f"These pairs have nothing to contrast (the model reads the same tokens{why}): {shown}"


def _summaries(acts: torch.Tensor, lengths: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Mean of acts [batch, pos, d_model] over positions [start, length) of each row -> [batch, d_model]."""
    pos = torch.arange(acts.shape[1])  # [pos]
    mask = (pos[None] >= starts[:, None]) & (pos[None] < lengths[:, None])  # [batch, pos]
    mask = mask.to(acts.dtype)[..., None]  # [batch, pos, 1]
    return (acts * mask).sum(1) / mask.sum(1)


def contrast_vectors(lm, pairs: Sequence[tuple[str, str]], layers: Sequence[int], *,
                     position: str = "diff", method: str | None = None,
                     label: str = "plus - minus") -> dict[int, SteeringVector]:
    """Mean-difference steering vectors at several stream layers (EMBEDDINGS or a block index: the
    stream after that block, core.models.hook_names.stream_hook) from one forward pass over the pairs.

    pairs: (plus text, minus text). position: "diff" summarises each text by the mean of its
    activations from the first token where the pair differs on; "last" by its last token. Texts
    are cut to the context window, so both are read inside it; a pair the model reads as the same
    tokens (also one that differs only after the cut) raises ValueError.
    """
    if not pairs:
        raise ValueError("Give at least one contrast pair.")
    if position not in POSITION_MODES:
        raise ValueError(f"position must be one of {POSITION_MODES}, not {position!r}")
    plus, minus = [p for p, _ in pairs], [m for _, m in pairs]
    tokens, lengths = lm.tokenize_batch(plus + minus)  # [2 * n_pairs, pos], [2 * n_pairs], cut to n_ctx
    n = len(pairs)
    shared = torch.tensor([common_prefix(tokens[i, : lengths[i]], tokens[n + i, : lengths[n + i]])
                           for i in range(n)])  # [n_pairs] tokens both sides start with
    same = [i for i in range(n) if shared[i] >= max(lengths[i], lengths[n + i])]
    if same:
        raise ValueError(same_tokens_message(lm, [pairs[i] for i in same],
                                             cut=any(lengths[i] >= lm.cfg.n_ctx for i in same)))
    if position == "diff":
        starts = torch.cat([shared, shared])  # [2 * n_pairs]
        starts = torch.minimum(starts, lengths - 1)  # a text that is a prefix of its partner: its end
    else:
        starts = lengths - 1
    names = [stream_hook(layer) for layer in layers]
    _, cache = lm.run_with_cache(tokens, names=names, stop_at_layer=_stop_after(names))
    out = {}
    for layer, name in zip(layers, names, strict=True):
        summary = _summaries(cache[name].float(), lengths, starts)  # [2 * n_pairs, d_model]
        vector = summary[:n].mean(0) - summary[n:].mean(0)  # [d_model]
        out[layer] = SteeringVector(
            vector, name, method or ("one pair (ActAdd)" if n == 1 else "mean difference (CAA)"),
            label, n)
    return out


def mean_difference(lm, pairs: Sequence[tuple[str, str]], layer: int, *, position: str = "diff",
                    label: str = "plus - minus") -> SteeringVector:
    """CAA: mean(plus activations) - mean(minus activations) in the stream after block `layer`."""
    return contrast_vectors(lm, pairs, [layer], position=position, label=label)[layer]


def act_add(lm, plus: str, minus: str, layer: int, *, position: str = "diff") -> SteeringVector:
    """ActAdd: the activation difference of a single pair (averaged over positions, see above)."""
    return contrast_vectors(lm, [(plus, minus)], [layer], position=position,
                            method="one pair (ActAdd)", label=f"{plus!r} - {minus!r}")[layer]


def typical_norm(lm, hook_name: str, texts: Sequence[str]) -> float:
    """Mean norm of the activation at hook_name over the tokens of texts (BOS and padding left out)."""
    tokens, lengths = lm.tokenize_batch(texts)  # [batch, pos]
    _, cache = lm.run_with_cache(tokens, names=[hook_name], stop_at_layer=_stop_after([hook_name]))
    norms = cache[hook_name].float().norm(dim=-1)  # [batch, pos]
    pos = torch.arange(tokens.shape[1])
    mask = (pos[None] >= 1) & (pos[None] < lengths[:, None])  # [batch, pos]
    return float(norms[mask].mean())


def from_direction(lm, direction, hook_name: str, *, method: str, label: str,
                   reference_texts: Sequence[str], scale: float = DIRECTION_SCALE) -> SteeringVector:
    """A found direction (probe weights, SAE decoder row), made unit length and then scaled to
    `scale` times the typical norm of the stream at hook_name (coefficient 1 = that push)."""
    v = torch.as_tensor(np.asarray(direction), dtype=torch.float32).flatten()  # [d_model]
    if v.shape[0] != lm.cfg.d_model:
        raise ValueError(f"The direction has {v.shape[0]} numbers; this model's d_model is {lm.cfg.d_model}.")
    if not torch.isfinite(v).all() or float(v.norm()) == 0:
        raise ValueError("The direction is zero or not finite.")
    size = scale * typical_norm(lm, hook_name, reference_texts)
    return SteeringVector(v / v.norm() * size, hook_name, method, label)


def random_like(sv: SteeringVector, seed: int = 0) -> SteeringVector:
    """A random direction with the same norm: the control for "any big push does this"."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(sv.vector.shape[0], generator=g)  # [d_model]
    return replace(sv, vector=r / r.norm() * sv.vector.norm(), method="random control",
                   label=f"random direction, same norm (seed {seed})")


# -- applying them ------------------------------------------------------------------------------------
def steering_hook(vector: torch.Tensor, coefficient: float | torch.Tensor,
                  start_pos: int | torch.Tensor = 0) -> HookFn:
    """fn(act, hook) adding coefficient * vector to act [batch, pos, d_model] at positions >= start_pos.

    coefficient and start_pos are numbers, or tensors [batch] (one per row, for batched sweeps).
    A coefficient of exactly 0 returns None: the activations pass through untouched. The push is
    computed once, not at every generation step.
    """
    per_row = isinstance(coefficient, torch.Tensor)
    if not per_row and coefficient == 0:
        return lambda act, hook: None
    c = coefficient.float()[:, None, None] if per_row else float(coefficient)  # [batch, 1, 1] or float
    push = c * vector.float()  # [batch, 1, d_model] or [d_model]
    starts = torch.as_tensor(start_pos).reshape(-1, 1)  # [batch or 1, 1]
    last_start = int(starts.max())  # from this position on, every row is pushed
    pushes = {}  # dtype -> push in that dtype

    def hook(act: torch.Tensor, point: HookPoint) -> torch.Tensor:
        p = pushes.get(act.dtype)
        if p is None:
            p = pushes[act.dtype] = push.to(act.dtype)
        if last_start <= point.pos_offset:  # every position here is steered (each generation step)
            return act + p
        pos = point.positions(act.shape[1])  # [pos]
        mask = pos[None, :] >= starts  # [batch or 1, pos]
        return act + mask.to(act.dtype)[..., None] * p

    return hook


def steering_writes(sv: SteeringVector, coefficient: float | torch.Tensor,
                    start_pos: int | torch.Tensor = 0) -> list[Write]:
    """The push as activation writes: coefficient * vector added at sv.hook_name from start_pos on.

    coefficient and start_pos are numbers, or tensors [batch] (one per row). A coefficient of
    exactly 0 gives no write at all. Per-row coefficients make a value [batch, 1, d_model]; per-row
    start positions make one write per distinct start, in which the other rows add 0."""
    per_row = isinstance(coefficient, torch.Tensor)
    if not per_row and coefficient == 0:
        return []
    c = coefficient.float()[:, None, None] if per_row else float(coefficient)  # [batch, 1, 1] or float
    push = c * sv.vector.float()  # [batch, 1, d_model] or [d_model]
    starts = torch.as_tensor(start_pos).reshape(-1)  # [1] or [batch]
    if starts.numel() == 1:
        return [Write(sv.hook_name, push, start_pos=int(starts[0]))]
    rows = push if per_row else push.expand(len(starts), 1, -1)  # [batch, 1, d_model]
    return [Write(sv.hook_name, rows * (starts == s).to(rows.dtype)[:, None, None], start_pos=int(s))
            for s in torch.unique(starts)]


@contextmanager
def steer(lm, sv: SteeringVector, coefficient: float | torch.Tensor,
          start_pos: int | torch.Tensor = 0) -> Iterator[None]:
    """Forward passes and generation inside this block are steered (this thread only), on a local
    or a remote model (steering_writes)."""
    with lm.hooks(steering_writes(sv, coefficient, start_pos)):
        yield


def generate_steered(lm, tokens: torch.Tensor, sv: SteeringVector, coefficient: float,
                     settings: SamplingSettings = TEXT, *,
                     start_pos: int = 0) -> Generation:
    """Continue tokens [1, pos] with the KV cache while steering (core.models.generation.generate).
    With the same settings, coefficient 0 writes exactly the unsteered text."""
    with steer(lm, sv, coefficient, start_pos):
        return lm.generate(tokens, settings=settings)


def perplexity(lm, tokens: torch.Tensor, n_prompt: int) -> float:
    """exp(mean negative log-likelihood) of tokens[n_prompt:] (1-d) given what precedes them, under
    the model as it is: call it outside any steering block to score with the unsteered model."""
    tokens = torch.as_tensor(tokens).flatten()
    if len(tokens) <= n_prompt:
        return float("nan")
    nll = lm.loss(tokens[None], per_token=True)[0, n_prompt - 1:]  # [n_new]
    return float(nll.float().mean().exp())
