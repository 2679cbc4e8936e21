"""A direct forward pass for GPT-2 models: transformers' modules and arithmetic, without its machinery.

transformers' `GPT2LMHeadModel.forward` serves every use at once: a KV cache, cross-attention,
padding masks, output capture, gradient checkpointing, several return types. Each call pays for that
generality in Python: decorators that merge config defaults and capture outputs, building and
checking an attention mask, dozens of config attribute reads, module hooks. On a big model that is
noise (GPT-2 small: 0.98-1.00x); on the bundled model (4 layers of d_model 128, about 4 ms for 128
tokens on one thread) this loop takes 0.83-0.88x the time of transformers' forward, on 1 and 2 threads
(benchmarks/bench_models.py, "forward (no hooks)", three runs).

A forward pass of HookedLM needs none of it: no cache, no padding mask (rows are right-padded and
attention is causal), no outputs but the logits. So for GPT-2 models HookedLM runs this loop instead.
It computes with the same modules in the same order as transformers does (wte, wpe, drop; per block
ln_1, c_attn, the lab's attention function, c_proj, resid_dropout, ln_2, c_fc, act, c_proj, dropout;
then ln_f and lm_head), so the logits are the same to the last bit, dropout draws the same random
numbers in training, and PEFT's adapter layers (which replace c_attn and the others in place) run as
they would:

    resid_pre[0] = embed + pos_embed                        resid_pre[L] = resid_post[L-1]
    attn_out     = c_proj(z),  z from q, k, v = c_attn(ln_1(resid_pre)).split(d_model)
    resid_mid    = attn_out + resid_pre
    mlp_out      = c_proj(post),  post = act(pre),  pre = c_fc(ln_2(resid_mid))
    resid_post   = resid_mid + mlp_out

Hook points: the loop applies every one itself, through the same dispatcher (core.models.dispatch),
to the same tensors as HookedLM's module hooks do on transformers' path (the attention function
applies q, k, v, the scores, the pattern and z on both). So it calls the hooked modules' `forward`
directly, and the model, transformer, block, attention and MLP modules not at all. That would skip
any other hook on those modules, or a `forward` replaced on one of them, so the loop runs only while
there is none (`DirectLoop.applies`: a hook that is not HookedLM's sends the pass to transformers'
forward; transformers' own output-capturing hooks are inert here and do not count). One
difference is by design: a write at resid_mid is exact here, where transformers' path can only
reach resid_mid through attn_out ((new - resid_pre) + resid_pre, equal to float rounding).
tests/unit/test_direct_forward.py checks logits, every hook point, writes, stops, gradients and
dropout against transformers' path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as torch_module
from transformers.models.gpt2.modeling_gpt2 import (
    GPT2MLP,
    GPT2Attention,
    GPT2Block,
    GPT2LMHeadModel,
    GPT2Model,
)

from core.models.dispatch import RunState, StopForward, apply_in
from core.models.hooked_attention import IMPLEMENTATION, hooked_attention_forward

ENABLED = True  # False: HookedLM always runs transformers' forward (tests compare the two paths)
_NO_RUN = RunState()  # no hooks, nothing cached: every hook point passes its tensor through
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")


def supports(model) -> bool:
    """Whether `model` is a GPT-2 language model this loop computes exactly as transformers would:
    transformers' own classes (a subclass may compute something else), self-attention only."""
    return (type(model) is GPT2LMHeadModel and type(model.transformer) is GPT2Model
            and not model.config.add_cross_attention
            and all(type(b) is GPT2Block and type(b.attn) is GPT2Attention and type(b.mlp) is GPT2MLP
                    and not b.attn.is_cross_attention for b in model.transformer.h))


class BlockNames:
    """The hook names of one layer (built once per model, not per pass)."""

    def __init__(self, layer: int):
        self.resid_pre = f"blocks.{layer}.hook_resid_pre"
        self.attn_out = f"blocks.{layer}.hook_attn_out"
        self.resid_mid = f"blocks.{layer}.hook_resid_mid"
        self.pre = f"blocks.{layer}.mlp.hook_pre"
        self.post = f"blocks.{layer}.mlp.hook_post"
        self.mlp_out = f"blocks.{layer}.hook_mlp_out"
        self.resid_post = f"blocks.{layer}.hook_resid_post"


def _uncalled(model: GPT2LMHeadModel) -> list[nn.Module]:
    """The modules the loop does not call at all: the model, its transformer, each block, attention
    and MLP (their `forward` is replaced by the loop's own code)."""
    t = model.transformer
    return [model, t] + [m for b in t.h for m in (b, b.attn, b.mlp)]


def _bypassed(model: GPT2LMHeadModel) -> list[nn.Module]:
    """The modules whose hooks the loop does not run: those it does not call, and those it calls
    `forward` on (to apply their hook points itself)."""
    t = model.transformer
    return _uncalled(model) + [t.wte, t.wpe, t.ln_f] + [m for b in t.h for m in (b.mlp.c_fc, b.mlp.c_proj)]


def _inert(hook) -> bool:
    """transformers' output-capturing hooks (installed for good the first time someone asks a model
    for output_hidden_states or output_attentions) do nothing unless transformers' own forward set up
    a collector, which this loop never does."""
    return (getattr(hook, "__module__", "") == "transformers.utils.output_capturing"
            and getattr(hook, "__name__", "") == "output_capturing_hook")


def _foreign_hooks(hook_dicts: list[dict], known: set[tuple[int, int]]) -> bool:
    """Whether a hook dict holds a hook that is neither known (HookedLM's) nor inert."""
    return any((id(d), key) not in known and not _inert(fn) for d in hook_dicts for key, fn in d.items())


def has_module_hooks(model: GPT2LMHeadModel) -> bool:
    """Whether a module the loop bypasses already carries a hook (asked before HookedLM installs its
    own: a model that came with hooks of someone else's keeps transformers' forward)."""
    return _foreign_hooks([getattr(m, d) for m in _bypassed(model) for d in _HOOKS], set())


class DirectLoop:
    """The loop for one GPT-2 model, built after HookedLM installed its hooks (on a model that had
    none there before): `logits(tokens, run)` when `applies()`, else the caller runs transformers'
    forward."""

    def __init__(self, model: GPT2LMHeadModel):
        self.model = model
        self.names = [BlockNames(layer) for layer in range(len(model.transformer.h))]
        # the hook dicts of the modules it bypasses (torch edits them in place and keys a new hook with
        # an id never used before), the hooks in them now (HookedLM's, which it never removes, so a
        # change of size is a change of hooks), and the sizes last checked
        self._hook_dicts = [getattr(m, d) for m in _bypassed(model) for d in _HOOKS]
        self._known = {(id(d), key) for d in self._hook_dicts for key in d}
        self._checked_sizes = list(map(len, self._hook_dicts))
        self._instance_dicts = [m.__dict__ for m in _uncalled(model)]

    def applies(self, tokens: torch.Tensor) -> bool:
        """Per call: tokens [batch, pos], the lab's attention function is still the model's, no
        gradient checkpointing while training (it changes how blocks run), no `forward` replaced on a
        module the loop does not call, and no hook but HookedLM's (or transformers' inert
        output-capturing ones) would be skipped."""
        model = self.model
        if not (ENABLED and tokens.dim() == 2 and model.config._attn_implementation == IMPLEMENTATION
                and not (model.training and model.transformer.gradient_checkpointing)
                and not any(getattr(torch_module, g) for g in _GLOBAL_HOOKS)
                and not any("forward" in d for d in self._instance_dicts)):
            return False
        sizes = list(map(len, self._hook_dicts))
        if sizes != self._checked_sizes:  # a hook came or went: look at each one
            if _foreign_hooks(self._hook_dicts, self._known):
                return False
            self._checked_sizes = sizes
        return True

    def logits(self, tokens: torch.Tensor, run: RunState | None) -> torch.Tensor:
        """Logits [batch, pos, d_vocab] of tokens [batch, pos], with `run`'s hooks (None: no hooks).
        Raises StopForward at blocks.L.hook_resid_pre when the run stops before layer L."""
        model, t = self.model, self.model.transformer
        run = run or _NO_RUN
        position_ids = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        stop = run.stop_at_layer
        h = t.drop(apply_in(run, "hook_embed", None, t.wte.forward(tokens))
                   + apply_in(run, "hook_pos_embed", None, t.wpe.forward(position_ids)))
        for layer, (block, n) in enumerate(zip(t.h, self.names, strict=True)):
            if stop is not None and layer >= stop:
                raise StopForward
            h = apply_in(run, n.resid_pre, layer, h)
            a = apply_in(run, n.attn_out, layer, _attention(block.attn, block.ln_1(h)))
            h = apply_in(run, n.resid_mid, layer, a + h)  # transformers: attn_output + residual
            mlp = block.mlp
            pre = apply_in(run, n.pre, layer, mlp.c_fc.forward(block.ln_2(h)))
            post = apply_in(run, n.post, layer, mlp.act(pre))
            out = apply_in(run, n.mlp_out, layer, mlp.dropout(mlp.c_proj.forward(post)))
            h = apply_in(run, n.resid_post, layer, h + out)
        return model.lm_head(apply_in(run, "ln_final.hook_normalized", None, t.ln_f.forward(h)))


def _attention(attn: GPT2Attention, x: torch.Tensor) -> torch.Tensor:
    """GPT2Attention.forward without a cache or a mask: [batch, pos, d_model] -> attn_out."""
    query, key, value = attn.c_attn(x).split(attn.split_size, dim=2)
    shape = (*query.shape[:-1], -1, attn.head_dim)  # [batch, pos, head, d_head]
    query, key, value = (s.view(shape).transpose(1, 2) for s in (query, key, value))
    z, _ = hooked_attention_forward(attn, query, key, value, None, scaling=attn.scaling,
                                    dropout=attn.attn_dropout.p if attn.training else 0.0)
    z = z.reshape(*z.shape[:-2], -1).contiguous()  # [batch, pos, d_model]
    return attn.resid_dropout(attn.c_proj(z))
