"""HookedLM: a Hugging Face causal LM with TransformerLens-style hook points, safe to share.

    lm = load_model()                                   # the bundled model
    logits, cache = lm.run_with_cache(tokens)           # cache["blocks.0.hook_resid_post"]
    with lm.hooks([(act_name("resid_pre", 2), fn)]):    # fn(act, hook) -> new act, or None
        logits = lm(tokens)

The hooks are permanent PyTorch hooks that do nothing unless the current thread has an active run
(see core.models.dispatch), so one cached model serves every session and thread. Its weights are
frozen: training happens on `lm.copy(trainable=True)`.
"""

from __future__ import annotations

import copy as _copy
import ctypes
import itertools
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from core.models import direct_forward
from core.models import tokens as tok
from core.models.adapters import Adapter, AttentionWeights, adapter_for
from core.models.backend import as_hook
from core.models.dispatch import Dispatcher, HookFn, RunState, StopForward, apply_in
from core.models.hook_names import all_hook_names, layer_of
from core.models.hooked_attention import AttentionSite
from core.models.loss import next_token_loss

_ids = itertools.count()

# glibc's malloc: requests up to MMAP_THRESHOLD come from its heap and are reused after free, and up
# to TRIM_THRESHOLD of free memory at the heap's top is kept for the next request. Its defaults (an
# mmap threshold from 128 KB, a trim threshold of twice that) hand each freed activation back to the
# OS, so the next forward pass page-faults fresh zeroed memory for every tensor it allocates. That
# costs little when buffers are freed layer by layer, and a lot when a run keeps every activation
# (run_with_cache): measured on 1 thread, 1.6-1.9x a plain forward on the bundled shape with the
# defaults and 1.2x with these values; GPT-2 small's shape 1.12-1.19x and 1.0-1.05x. Set
# LAB_MALLOC_TUNING=0 to keep the defaults.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 128 << 20
_tuning_lock = threading.Lock()
_tuned: bool | None = None


def keep_freed_memory_for_reuse() -> bool:
    """Tune malloc once per process as described above; True if the C library accepted it (glibc)."""
    global _tuned
    with _tuning_lock:
        if _tuned is None:
            _tuned = False
            if os.environ.get("LAB_MALLOC_TUNING", "1").strip() != "0":
                try:
                    mallopt = ctypes.CDLL(None).mallopt
                    _tuned = (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                              and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
                except (OSError, AttributeError):  # not glibc (macOS, Windows): nothing to tune
                    _tuned = False
        return _tuned


def _version(t: torch.Tensor) -> int | None:
    """The tensor's in-place write counter (None for inference-mode tensors, which keep none)."""
    try:
        return t._version
    except RuntimeError:
        return None


def derived_spec(spec: str, what: str) -> str:
    """A spec of its own for a model derived from `spec` (a copy, a tuned copy): "bundled+lora#1f3a9c0e"."""
    return f"{spec}+{what}#{uuid.uuid4().hex[:8]}"
NameFilter = Sequence[str] | Callable[[str], bool] | None
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
               "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")


class ActivationCache(dict):
    """name -> activation tensor, plus `stack(site)` for [layer, ...] views."""

    def stack(self, site: str) -> torch.Tensor:
        """Stack one site over the cached layers: stack("resid_post") -> [layer, batch, pos, d_model]."""
        names = sorted((n for n in self if n.endswith("hook_" + site) and n.startswith("blocks.")),
                       key=layer_of)
        if not names:
            raise KeyError(f"No cached activations for site {site!r}")
        return torch.stack([self[n] for n in names])


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _replace_first(out, new):
    return (new, *out[1:]) if isinstance(out, tuple) else new


class HookedLM:
    """See the module docstring. Build one with core.models.load_model()."""

    is_remote = False  # core.models.backend.ModelBackend: the weights are in this process

    def __init__(self, model: nn.Module, tokenizer, *, spec: str, display_name: str | None = None,
                 is_bundled: bool = False):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self.name = display_name or spec
        self.is_bundled = is_bundled
        self.adapter: Adapter = adapter_for(model)
        self.adapter.install_attention()
        self.cfg = self.adapter.config()
        self._dispatch = Dispatcher(f"{next(_ids)}")
        self._names = all_hook_names(
            self.cfg.n_layers, has_pos_embed=self.adapter.pos_embed() is not None,
            has_resid_mid=self.cfg.has_resid_mid,
        )
        self._name_set = frozenset(self._names)
        # GPT-2 models run core.models.direct_forward's loop (same modules, same bits, less Python),
        # which applies the hooks installed here itself, and only those
        direct = direct_forward.supports(model) and not direct_forward.has_module_hooks(model)
        self._install_hooks()
        self._direct = direct_forward.DirectLoop(model) if direct else None
        keep_freed_memory_for_reuse()

    # -- hook points ----------------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        """Every hook name this model offers, in forward order."""
        return list(self._names)

    def _install_hooks(self) -> None:
        d, a = self._dispatch, self.adapter
        has_mid = self.cfg.has_resid_mid

        def on_output(name, layer):
            def hook(module, args, output):
                run = d.current()
                if run is None or name not in run.active:
                    return None
                return _replace_first(output, apply_in(run, name, layer, _first(output)))
            return hook

        def on_input(name, layer, *, is_resid_pre=False):
            mid = f"blocks.{layer}.hook_resid_mid"

            def hook(module, args, kwargs):
                run = d.current()
                if run is None:
                    return None
                if is_resid_pre:
                    stop = run.stop_at_layer
                    if stop is not None and layer >= stop:
                        raise StopForward
                if name not in run.active and not (is_resid_pre and mid in run.active):
                    return None
                if args:
                    new = apply_in(run, name, layer, args[0])
                    changed = (new, *args[1:]), kwargs
                else:
                    new = apply_in(run, name, layer, kwargs["hidden_states"])
                    changed = args, {**kwargs, "hidden_states": new}
                if is_resid_pre and has_mid and mid in run.active:
                    run.resid_pre[layer] = new  # resid_mid = resid_pre + attn_out, read at the attention
                return changed
            return hook

        def on_attn_output(layer):
            attn_out, mid = f"blocks.{layer}.hook_attn_out", f"blocks.{layer}.hook_resid_mid"

            def hook(module, args, output):
                run = d.current()
                if run is None or (attn_out not in run.active and mid not in run.active):
                    return None
                out = apply_in(run, attn_out, layer, _first(output))
                if has_mid and mid in run.active:
                    # resid_mid = resid_pre + attn_out; writing it means changing attn_out
                    pre = run.resid_pre[layer]
                    resid_mid = pre + out
                    before = _version(resid_mid)
                    new_mid = apply_in(run, mid, layer, resid_mid)
                    # a hook may also write resid_mid in place and return nothing. Inference-mode tensors
                    # keep no write counter, so there a hook at resid_mid counts as a write: a hook that
                    # only read gives attn_out back as (resid_mid - pre), equal to float rounding
                    written_in_place = (before is None and mid in run.hooks) or _version(resid_mid) != before
                    if new_mid is not resid_mid or written_in_place:
                        out = new_mid - pre
                return _replace_first(output, out)
            return hook

        a.embed().register_forward_hook(on_output("hook_embed", None))
        if a.pos_embed() is not None:
            a.pos_embed().register_forward_hook(on_output("hook_pos_embed", None))
        for layer in range(self.cfg.n_layers):
            m = a.block_modules(layer)
            m.block.register_forward_pre_hook(
                on_input(f"blocks.{layer}.hook_resid_pre", layer, is_resid_pre=True), with_kwargs=True)
            m.attn.register_forward_hook(on_attn_output(layer))
            (m.attn_core or m.attn)._lab_site = AttentionSite(d, layer)
            m.mlp_in.register_forward_hook(on_output(f"blocks.{layer}.mlp.hook_pre", layer))
            m.mlp_out.register_forward_pre_hook(
                on_input(f"blocks.{layer}.mlp.hook_post", layer), with_kwargs=True)
            m.mlp.register_forward_hook(on_output(f"blocks.{layer}.hook_mlp_out", layer))
            m.block.register_forward_hook(on_output(f"blocks.{layer}.hook_resid_post", layer))
        a.ln_final().register_forward_hook(on_output("ln_final.hook_normalized", None))

    def _check_names(self, names: Iterable[str]) -> None:
        unknown = [n for n in names if n not in self._name_set]
        if unknown:
            raise ValueError(
                f"Unknown hook point(s) for {self.name}: {', '.join(unknown)}. "
                "Build names with act_name(site, layer); lm.hook_names() lists them all."
            )

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, HookFn]]) -> Iterator[HookedLM]:
        """Activate hooks for forward passes in this thread only; removed on exit, also on error.
        Each hook is a (name, fn) pair or a core.models.backend.Write."""
        fwd_hooks = [as_hook(h) for h in fwd_hooks]
        self._check_names(n for n, _ in fwd_hooks)
        outer = self._dispatch.current() or RunState()
        token = self._dispatch.state.set(outer.with_hooks(fwd_hooks))
        try:
            yield self
        finally:
            self._dispatch.state.reset(token)

    @contextmanager
    def no_hooks(self) -> Iterator[HookedLM]:
        """Run the model's modules with no hook run active in this thread (e.g. to recompute one
        component's output by hand inside a hooked pass); the outer run resumes on exit."""
        token = self._dispatch.state.set(None)  # core.models.dispatch: None means "no run here"
        try:
            yield self
        finally:
            self._dispatch.state.reset(token)

    # -- forward passes -------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, *, grad: bool = False, **kwargs) -> torch.Tensor:
        """Logits [batch, pos, d_vocab] for tokens [batch, pos]. Active hooks apply.

        GPT-2 models run core.models.direct_forward's loop: the same modules, the same bits, without
        transformers' per-call machinery. Keyword arguments (say, a padding mask) go to transformers.
        """
        with torch.set_grad_enabled(grad):
            if not kwargs and self._direct is not None and self._direct.applies(tokens):
                return self._direct.logits(tokens, self._dispatch.current())
            # All ones: batches are right-padded on purpose (causal attention never looks ahead), and
            # an explicit mask tells transformers so instead of warning about padding.
            kwargs.setdefault("attention_mask", torch.ones_like(tokens))
            return self.model(input_ids=tokens, use_cache=False, **kwargs).logits

    __call__ = forward

    def run_with_cache(self, tokens: torch.Tensor, names: NameFilter = None, *, grad: bool = False,
                       stop_at_layer: int | None = None) -> tuple[torch.Tensor | None, ActivationCache]:
        """Forward pass that also records activations: names is None (all), a list, or a predicate.

        stop_at_layer=L ends the pass before block L runs (TransformerLens's name for it): only
        activations of earlier layers are recorded, no logits are computed, and None is returned
        for them. Reading one early layer over a big dataset costs a fraction of a full pass.
        """
        if names is None:
            wanted = self._name_set
        elif callable(names):
            wanted = frozenset(n for n in self._names if names(n))
        else:
            self._check_names(names)
            wanted = frozenset(names)
        cache = ActivationCache()
        outer = self._dispatch.current() or RunState()
        run = RunState(outer.hooks, cache, wanted, outer.pos_offset, stop_at_layer=stop_at_layer)
        token = self._dispatch.state.set(run)
        try:
            logits = self.forward(tokens, grad=grad)
        except StopForward:
            logits = None
        finally:
            self._dispatch.state.reset(token)
        return logits, cache

    def next_token_logits(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Logits for the token after each text, at its last real token: [batch, d_vocab] float32.

        Texts of different lengths are batched right-padded; active hooks apply.
        """
        out = []
        for i in range(0, len(texts), batch_size):
            tokens, lengths = self.tokenize_batch(texts[i: i + batch_size])
            logits = self.forward(tokens)  # [batch, pos, d_vocab]
            out.append(logits[torch.arange(len(lengths)), lengths - 1].float())
        return torch.cat(out) if out else torch.zeros(0, self.cfg.d_vocab)

    def loss(self, tokens: torch.Tensor, *, per_token: bool = False, mask: torch.Tensor | None = None,
             grad: bool = False) -> torch.Tensor:
        """Next-token cross-entropy of tokens [batch, pos] under active hooks (core.models.loss):
        the mean, or [batch, pos - 1] with per_token=True; mask leaves predictions out."""
        return next_token_loss(self.forward(tokens, grad=grad), tokens, per_token=per_token, mask=mask)

    def generate(self, prompt, **kwargs):
        """Sample a continuation; active hooks apply at every step. See core.models.generation."""
        from core.models.generation import generate
        return generate(self, prompt, **kwargs)

    def generate_batch(self, tokens, settings=None, *, seeds=None):
        """Continue every row of tokens [batch, pos] at once (core.models.generation.generate_batch);
        NNsightLM has the same method, so pages call lm.generate_batch(...) on either backend."""
        from core.models.generation import SamplingSettings, generate_batch
        return generate_batch(self, tokens, settings or SamplingSettings(), seeds=seeds)

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """Logits from a residual-stream vector: final norm, then the unembedding (the logit lens)."""
        with torch.no_grad():
            return self.model.get_output_embeddings()(self.adapter.ln_final()(resid))

    # -- tokens ---------------------------------------------------------------------------------
    def to_tokens(self, text: str | Sequence[str], prepend_bos: bool = True) -> torch.Tensor:
        """LongTensor [batch, pos]; a list is right-padded (causal attention never sees the padding).

        Rows longer than the context window are cut to its n_ctx first tokens (prepare_prompt says
        so to the learner; datasets are simply kept in range).
        """
        return tok.to_tokens(self.tokenizer, text, prepend_bos=prepend_bos, max_len=self.cfg.n_ctx)

    def tokenize_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens [batch, pos] right-padded, lengths [batch]) for texts of different lengths,
        each cut to the context window."""
        return tok.tokenize_batch(self.tokenizer, texts, max_len=self.cfg.n_ctx)

    def single_token_id(self, word: str) -> int | None:
        """The id of `word` if it is exactly one known token for this model (mind the leading
        space: " Mary" inside a sentence), else None."""
        return tok.single_token_id(self.tokenizer, word)

    def to_str_tokens(self, text_or_tokens) -> list[str]:
        return tok.to_str_tokens(self.tokenizer, text_or_tokens)

    def to_string(self, tokens) -> str:
        return self.tokenizer.decode(torch.as_tensor(tokens).flatten().tolist())

    def unknown_words(self, text: str) -> list[str]:
        """Words the tokenizer maps to its unknown token (only word-level vocabularies have any)."""
        return tok.unknown_words(self.tokenizer, text)

    def prepare_prompt(self, text: str, max_tokens: int | None = None) -> tok.Prompt:
        """Validate a typed prompt: raises EmptyPromptError; cuts it to n_ctx (or max_tokens, if
        smaller) and records how many tokens were dropped."""
        return tok.prepare_prompt(self, text, max_tokens)

    # -- weights --------------------------------------------------------------------------------
    @property
    def W_E(self) -> torch.Tensor:
        """Token embedding [d_vocab, d_model]."""
        return self.adapter.embed().weight

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding [d_model, d_vocab]."""
        return self.model.get_output_embeddings().weight.T

    @property
    def W_pos(self) -> torch.Tensor | None:
        """Learned position embedding [n_ctx, d_model], or None for rotary models."""
        pos = self.adapter.pos_embed()
        return None if pos is None else pos.weight

    @property
    def tied_embeddings(self) -> bool:
        return self.model.get_output_embeddings().weight.data_ptr() == self.W_E.data_ptr()

    def attention_weights(self, layer: int) -> AttentionWeights:
        """Per-head W_Q, W_K, W_V [head, d_model, d_head], W_O [head, d_head, d_model] of a layer."""
        return self.adapter.attention_weights(layer, self.cfg)

    def detached_model(self) -> nn.Module:
        """A deep copy of the transformers model with none of our hook points (e.g. to inject PEFT)."""
        # The dispatcher (and its ContextVar) stays behind: memo maps it to None in the copy.
        model = _copy.deepcopy(self.model, memo={id(self._dispatch): None})
        for module in model.modules():
            for attr in _HOOK_DICTS:
                getattr(module, attr, {}).clear()
            module.__dict__.pop("_lab_site", None)
        return model

    def copy(self, *, trainable: bool = False, spec: str | None = None) -> HookedLM:
        """A private copy (own weights, own hooks) to fine-tune or edit; the shared model is untouched.

        The copy gets a spec of its own ("<spec>+copy#1f3a9c0e" unless one is given), so nothing keyed
        on spec (caches, hand-offs) can mix its results with the base model's."""
        model = self.detached_model()
        model.requires_grad_(trainable)
        return HookedLM(model, self.tokenizer, spec=spec or derived_spec(self.spec, "copy"),
                        display_name=self.name, is_bundled=self.is_bundled)

    def __repr__(self) -> str:
        c = self.cfg
        return (f"HookedLM({self.name!r}, {c.arch}, {c.n_layers} layers x {c.n_heads} heads, "
                f"d_model={c.d_model}, {c.n_params / 1e6:.1f}M params)")


def has_weights(lm) -> bool:
    """True for a HookedLM: its weights and whole caches are in this process. Any other backend (an
    NNsightLM, here or on NDIF) is asked through core.models.backend's small-read helpers, on a
    budget of requests."""
    return isinstance(lm, HookedLM)
