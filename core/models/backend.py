"""A model backend: the part of a model every page talks to, wherever the model runs.

A page asks a model a handful of questions: how big are you (cfg), what are these tokens, what are
the activations at these hook points, what happens if I add this vector there, continue this text,
how surprised are you by it. `ModelBackend` is exactly that list. Two classes answer it:

- HookedLM (core.models.hooked_lm): the weights are in this process; hooks are Python functions
  run inside the forward pass.
- NNsightLM (core.models.nnsight_backend): the same questions as one nnsight trace per request,
  run here (`remote=False`) or on NDIF's shared GPUs (`remote=True`), where models far too big for
  a laptop (Llama-3.1-70B) are already loaded.

Across a network two things change, and this module is where they are settled:

1. Hooks become data. A Python function cannot be trusted to run on someone else's GPU, but "add
   this vector at blocks.6.hook_resid_post from position 3 on" can: a `Write` is that sentence as
   a frozen object (a hook name, a tensor, add or set, which positions, which head). A Write is
   also an ordinary hook function fn(act, hook): HookedLM runs it as `lm.hooks([(w.name, w)])`,
   NNsightLM sends it as data (`lm.hooks([w])`), and both compute it with the same `write_into`.
2. Ask only for what you draw. A remote call should move kilobytes: the activations at the positions
   a chart shows (`read_at`), the logits of the few tokens a logit lens plots (`lens_logits`), each
   head's output projected on an answer direction and the few weights around it (`head_projections`,
   `readout_weights`: direct logit attribution), or one number per component for attribution
   patching (`attribution_scores`), never the whole cache. Each helper runs on the server when the
   backend can, and falls back to `run_with_cache` and the weights on a local model; both give the
   same numbers (tests compare them to 1e-5). Pages call these helpers, not the backends' methods.

Attribution patching (Nanda, 2023): the effect of patching activation a from a source run into a
target run is estimated to first order as (a_source - a_target) . d metric / d a, with the
gradient taken in the target run; one forward and one backward pass give it for every component.
The metric here is the logit difference logit[right] - logit[wrong] at one position per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from core.models.config import ModelConfig
from core.models.hook_names import act_name, layer_of, stream_hook

WRITE_MODES = ("add", "set")  # add: act + value; set: value replaces act
PATTERN_SITES = ("pattern", "attn_scores")  # [batch, head, q_pos, k_pos]: position is axis 2
HEAD_SITES = ("q", "k", "v", "z")  # [batch, pos, head, d_head]


def site_of(name: str) -> str:
    """The site of a hook name: "blocks.3.attn.hook_pattern" -> "pattern"."""
    return name.rsplit("hook_", 1)[-1]


def pos_axis(name: str) -> int:
    """Which axis of an activation is the (query) position: 2 for patterns, 1 for the rest."""
    return 2 if site_of(name) in PATTERN_SITES else 1


def write_into(act: torch.Tensor, mode: str, value: torch.Tensor, start_pos: int,
               positions: torch.Tensor | None, head: int | None, pos_offset: int) -> torch.Tensor | None:
    """One write on act [batch, pos, ...] (a head's slice if head is given); None if nothing changes.

    act[:, p] for absolute positions p = pos_offset + i that are >= start_pos (and in `positions`,
    if given) becomes act[:, p] + value (mode "add") or value (mode "set"). value broadcasts against
    the selected slice [batch, n_selected, ...] (a [d_model] vector, a per-row [batch, 1, d_model],
    or a full replacement). pos_offset is the absolute position of act[:, 0] (> 0 while generating
    with a KV cache). A pure tensor function, so the same code runs in HookedLM's hooks and inside
    an nnsight trace, here or on a remote server.
    """
    n_pos = act.shape[1]
    pos = torch.arange(pos_offset, pos_offset + n_pos, device=act.device)  # [pos] absolute
    keep = pos >= start_pos
    if positions is not None:
        keep = keep & torch.isin(pos, positions.to(act.device))
    if not bool(keep.any()):
        return None
    index = keep.nonzero().flatten()  # [n_selected]
    out = act.clone()
    if head is None:
        part = out[:, index]  # [batch, n_selected, ...]
        out[:, index] = part + value.to(act.dtype) if mode == "add" else value.to(act.dtype).expand_as(part)
    else:
        part = out[:, index, head]  # [batch, n_selected, d_head]
        new = part + value.to(act.dtype) if mode == "add" else value.to(act.dtype).expand_as(part)
        out[:, index, head] = new
    return out


@dataclass(frozen=True, eq=False)
class Write:
    """An activation write as data: "add `value` at hook `name` from position `start_pos` on".

    mode "add" adds value, "set" replaces the activation with it (patching, ablation with zeros).
    positions (absolute positions) narrows it further; head picks one head of a [batch, pos, head,
    d_head] site (z). value broadcasts against act[:, selected positions] (see write_into). A Write
    is also a hook function, fn(act, hook), so HookedLM runs it like any other hook, and a remote
    backend sends it as data.
    """

    name: str
    value: torch.Tensor
    mode: str = "add"
    start_pos: int = 0
    positions: tuple[int, ...] | None = None
    head: int | None = None

    def __post_init__(self):
        if self.mode not in WRITE_MODES:
            raise ValueError(f"Write mode must be one of {WRITE_MODES}, not {self.mode!r}")
        if not isinstance(self.value, torch.Tensor):
            object.__setattr__(self, "value", torch.as_tensor(self.value, dtype=torch.float32))
        if self.positions is not None:
            object.__setattr__(self, "positions", tuple(int(p) for p in self.positions))
        if self.head is not None and site_of(self.name) not in HEAD_SITES:
            raise ValueError(f"head= needs a per-head hook point (q, k, v, z), not {self.name}")

    def positions_tensor(self) -> torch.Tensor | None:
        return None if self.positions is None else torch.tensor(self.positions, dtype=torch.long)

    def apply(self, act: torch.Tensor, pos_offset: int = 0) -> torch.Tensor | None:
        return write_into(act, self.mode, self.value, self.start_pos, self.positions_tensor(), self.head,
                          pos_offset)

    def __call__(self, act: torch.Tensor, hook) -> torch.Tensor | None:
        return self.apply(act, hook.pos_offset)

    @property
    def nbytes(self) -> int:
        return self.value.numel() * self.value.element_size()


def as_hook(item) -> tuple[str, Callable]:
    """A Write or a (name, fn) pair -> (name, fn), the form lm.hooks() takes."""
    return (item.name, item) if isinstance(item, Write) else tuple(item)


@runtime_checkable
class ModelBackend(Protocol):
    """What the pages use of a model (HookedLM has all of it; so has NNsightLM)."""

    cfg: ModelConfig
    spec: str
    name: str
    tokenizer: object
    is_bundled: bool
    is_remote: bool

    def hook_names(self) -> list[str]: ...
    def to_tokens(self, text: str | Sequence[str], prepend_bos: bool = True) -> torch.Tensor: ...
    def to_str_tokens(self, text_or_tokens) -> list[str]: ...
    def to_string(self, tokens) -> str: ...
    def tokenize_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]: ...
    def single_token_id(self, word: str) -> int | None: ...
    def prepare_prompt(self, text: str, max_tokens: int | None = None): ...
    def run_with_cache(self, tokens: torch.Tensor, names=None, *, grad: bool = False,
                       stop_at_layer: int | None = None) -> tuple[torch.Tensor | None, dict]: ...
    def hooks(self, fwd_hooks) -> AbstractContextManager: ...
    def forward(self, tokens: torch.Tensor, *, grad: bool = False, **kwargs) -> torch.Tensor: ...
    def __call__(self, tokens: torch.Tensor, *, grad: bool = False, **kwargs) -> torch.Tensor: ...
    def next_token_logits(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor: ...
    def loss(self, tokens: torch.Tensor, *, per_token: bool = False, mask: torch.Tensor | None = None,
             grad: bool = False) -> torch.Tensor: ...
    def generate(self, prompt, **kwargs): ...
    def generate_batch(self, tokens: torch.Tensor, settings=None, *, seeds: list[int] | None = None): ...
    def unembed(self, resid: torch.Tensor) -> torch.Tensor: ...


PROTOCOL_MEMBERS = ("cfg", "spec", "name", "tokenizer", "is_bundled", "is_remote", "hook_names", "to_tokens",
                    "to_str_tokens", "to_string", "tokenize_batch", "single_token_id", "prepare_prompt",
                    "run_with_cache", "hooks", "forward", "next_token_logits", "loss", "generate",
                    "generate_batch", "unembed")


def missing_members(lm) -> list[str]:
    """The ModelBackend members `lm` lacks (empty for a complete backend)."""
    return [m for m in PROTOCOL_MEMBERS if not hasattr(lm, m)]


def is_remote(lm) -> bool:
    """Whether lm runs somewhere else (an NDIF model); False for HookedLM."""
    return bool(getattr(lm, "is_remote", False))


# -- asking for little: helpers that run on the server when the backend can ----------------------------
def _positions(tokens: torch.Tensor, positions) -> torch.Tensor:
    """One position per row [batch] (ints, a tensor, or None: the last position)."""
    if positions is None:
        return torch.full((tokens.shape[0],), tokens.shape[1] - 1, dtype=torch.long)
    positions = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
    if positions.numel() == 1 and tokens.shape[0] > 1:
        positions = positions.expand(tokens.shape[0])
    if positions.numel() != tokens.shape[0]:
        raise ValueError(f"{positions.numel()} positions for {tokens.shape[0]} rows")
    if bool(((positions < 0) | (positions >= tokens.shape[1])).any()):
        raise ValueError(f"positions must lie in 0..{tokens.shape[1] - 1}")
    return positions


def gather_at(act: torch.Tensor, name: str, positions: torch.Tensor) -> torch.Tensor:
    """act [batch, ...] at one (query) position per row -> [batch, ...] without that axis."""
    rows = torch.arange(act.shape[0])
    if pos_axis(name) == 2:
        return act[rows, :, positions]  # [batch, head, k_pos]
    return act[rows, positions]


def read_at(lm, tokens: torch.Tensor, names: Sequence[str], positions=None) -> dict[str, torch.Tensor]:
    """{name: activation at one position per row} ([batch, d_model]; patterns [batch, head, k_pos]).

    positions: one per row (default: each row's last position). Active hooks apply."""
    positions = _positions(tokens, positions)
    native = getattr(lm, "read_at", None)
    if native is not None:
        return native(tokens, names, positions)
    _, cache = lm.run_with_cache(tokens, names=list(names))
    return {n: gather_at(cache[n], n, positions) for n in names}


@dataclass(frozen=True)
class Lens:
    """Logit-lens readout: the stream at each layer, through the final norm and the unembedding."""

    layers: tuple[int, ...]  # stream points (core.models.hook_names.stream_layers)
    ids: torch.Tensor  # [layer, batch, k] token ids
    logits: torch.Tensor  # [layer, batch, k]
    log_probs: torch.Tensor  # [layer, batch, k]: log softmax over the whole vocabulary, then gathered


def lens_logits(lm, tokens: torch.Tensor, layers: Sequence[int], positions=None,
                token_ids: torch.Tensor | Sequence[int] | None = None, top_k: int = 5) -> Lens:
    """The logit lens at one position per row: for each stream point in `layers`, the logits of
    token_ids ([k] for every row, or [batch, k]) or of the top_k tokens. Active hooks apply."""
    positions = _positions(tokens, positions)
    ids = None if token_ids is None else torch.as_tensor(token_ids, dtype=torch.long)
    if ids is not None and ids.dim() == 1:
        ids = ids[None].expand(tokens.shape[0], -1)
    native = getattr(lm, "lens_logits_at", None)
    if native is not None:
        return native(tokens, tuple(layers), positions, ids, top_k)
    names = [stream_hook(L) for L in layers]
    _, cache = lm.run_with_cache(tokens, names=list(dict.fromkeys(names)))
    out_ids, out_logits, out_lp = [], [], []
    for name in names:
        resid = gather_at(cache[name], name, positions)  # [batch, d_model]
        logits = lm.unembed(resid).float()  # [batch, d_vocab]
        pick = logits.topk(top_k, dim=-1).indices if ids is None else ids
        out_ids.append(pick)
        out_logits.append(logits.gather(-1, pick))
        out_lp.append(logits.log_softmax(-1).gather(-1, pick))
    return Lens(tuple(layers), torch.stack(out_ids), torch.stack(out_logits), torch.stack(out_lp))


def head_projections(lm, tokens: torch.Tensor, layers: Sequence[int], vectors: torch.Tensor,
                     positions=None) -> torch.Tensor:
    """Each head's output z_h @ W_O[h] at one position per row, projected on one vector per row
    ([batch, d_model], e.g. an answer direction): [layer, batch, head]. The building block of direct
    logit attribution; on a remote model it is computed where W_O is. Active hooks apply."""
    positions = _positions(tokens, positions)
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    if vectors.dim() == 1:
        vectors = vectors[None].expand(tokens.shape[0], -1)
    native = getattr(lm, "head_projections", None)
    if native is not None:
        return native(tokens, list(layers), positions, vectors)
    names = [act_name("z", L) for L in layers]
    _, cache = lm.run_with_cache(tokens, names=list(dict.fromkeys(names)))
    out = []
    for L, name in zip(layers, names, strict=True):
        z = gather_at(cache[name], name, positions).float()  # [batch, head, d_head]
        W_O = lm.attention_weights(L).W_O.detach().float()  # [head, d_head, d_model]
        out.append(torch.einsum("bhd,hdm,bm->bh", z, W_O, vectors))
    return torch.stack(out)


@dataclass(frozen=True)
class ReadoutWeights:
    """The few weights direct logit attribution needs besides activations: a handful of unembedding
    columns, the final norm's scale (and shift), and each attention layer's output bias."""

    W_U: torch.Tensor  # [d_model, k]: the columns of token_ids
    b_U: torch.Tensor | None  # [k]
    ln_weight: torch.Tensor  # [d_model] (gamma)
    ln_bias: torch.Tensor | None  # [d_model] (beta; RMSNorm has none)
    b_O: torch.Tensor | None  # [layer, d_model] (None when the attention output has no bias)


def readout_weights(lm, token_ids) -> ReadoutWeights:
    """ReadoutWeights for token_ids [k]: kilobytes, where the whole unembedding of a large model is
    gigabytes (a remote model reads them in one small request)."""
    ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)
    native = getattr(lm, "readout_weights", None)
    if native is not None:
        return native(ids)
    with torch.no_grad():
        head = lm.model.get_output_embeddings()
        ln = lm.adapter.ln_final()
        biases = [lm.attention_weights(L).b_O for L in range(lm.cfg.n_layers)]
        b_O = None if any(b is None for b in biases) else torch.stack([b.detach().float() for b in biases])
        return ReadoutWeights(
            lm.W_U[:, ids].detach().float(),
            None if head.bias is None else head.bias[ids].detach().float(),
            ln.weight.detach().float(),
            None if getattr(ln, "bias", None) is None else ln.bias.detach().float(),
            b_O)


ATTRIBUTION_DIRECTIONS = {"denoise": ("clean", "corrupt"), "noise": ("corrupt", "clean")}


@dataclass(frozen=True)
class Attribution:
    """Attribution-patching estimates: {name: [batch, pos] (or [batch, pos, head] for z)} of the change
    in the target run's logit difference if that activation were patched in from the source run."""

    direction: str  # "denoise": clean -> corrupted run; "noise": corrupted -> clean run
    estimates: dict[str, torch.Tensor]
    clean_metric: torch.Tensor  # [batch] logit difference of the clean run
    corrupt_metric: torch.Tensor  # [batch]


def _check_attribution_names(names: Sequence[str]) -> None:
    for n in names:
        if site_of(n) in PATTERN_SITES or site_of(n) in ("q", "k", "v") or layer_of(n) is None:
            raise ValueError(f"attribution_scores takes a block's stream-shaped hook points and z "
                             f"(gradients flow back to the stream entering block 0), not {n}")


def attribution_scores(lm, clean: torch.Tensor, corrupt: torch.Tensor, names: Sequence[str],
                       right_ids, wrong_ids, positions=None, *, direction: str = "denoise") -> Attribution:
    """AtP estimates for every hook point in names (see the module docstring), one forward pass of
    each run and one backward pass of the target run. clean, corrupt [batch, pos] of equal shape;
    right_ids, wrong_ids [batch]; positions [batch] where the metric is read (default: last)."""
    if direction not in ATTRIBUTION_DIRECTIONS:
        raise ValueError(f"direction must be one of {tuple(ATTRIBUTION_DIRECTIONS)}")
    if clean.shape != corrupt.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupt.shape)} runs differ "
                         "in shape")
    _check_attribution_names(names)
    positions = _positions(clean, positions)
    right = torch.as_tensor(right_ids, dtype=torch.long).reshape(-1)
    wrong = torch.as_tensor(wrong_ids, dtype=torch.long).reshape(-1)
    native = getattr(lm, "attribution_scores", None)
    if native is not None:
        return native(clean, corrupt, list(names), right, wrong, positions, direction)
    return _local_attribution(lm, clean, corrupt, list(names), right, wrong, positions, direction)


def _metric(logits: torch.Tensor, positions, right, wrong) -> torch.Tensor:
    rows = torch.arange(logits.shape[0])
    last = logits[rows, positions].float()  # [batch, d_vocab]
    return last[rows, right] - last[rows, wrong]  # [batch]


def _local_attribution(lm, clean, corrupt, names, right, wrong, positions, direction) -> Attribution:
    source, target = (clean, corrupt) if direction == "denoise" else (corrupt, clean)
    with torch.no_grad():
        src_logits, src_cache = lm.run_with_cache(source, names=names)
    kept: dict[str, torch.Tensor] = {}

    def leaf(act, hook):  # the frozen model's stream becomes the leaf gradients flow back to
        return act.detach().requires_grad_(True)

    def keep(act, hook):
        act.retain_grad()
        kept[hook.name] = act
        return act

    with lm.hooks([(act_name("resid_pre", 0), leaf)] + [(n, keep) for n in names]):
        tgt_logits = lm.forward(target, grad=True)
    metric = _metric(tgt_logits, positions, right, wrong)
    metric.sum().backward()
    estimates = {}
    for n in names:
        grad = kept[n].grad if kept[n].grad is not None else torch.zeros_like(kept[n])
        estimates[n] = ((src_cache[n].float() - kept[n].detach().float()) * grad.float()).sum(-1)
    src_metric = _metric(src_logits, positions, right, wrong)
    tgt_metric = metric.detach()
    clean_m, corrupt_m = (src_metric, tgt_metric) if direction == "denoise" else (tgt_metric, src_metric)
    return Attribution(direction, estimates, clean_m.detach(), corrupt_m.detach())

