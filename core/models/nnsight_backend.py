"""NNsightLM: the lab's model interface as nnsight traces, here or on NDIF's GPUs.

nnsight wraps a Hugging Face model so that a `with model.trace(tokens):` block can read and
overwrite any module's inputs and outputs while the forward pass runs. The block is captured as
code, so it can also be shipped (`remote=True`) to NDIF, which runs it against a model already
loaded on its GPUs and sends back only the values the block saved.

Our hook names are TransformerLens's; nnsight speaks in module paths. One table per model maps
them, built from the same architecture adapters HookedLM uses (core.models.adapters):

    hook_embed                     embedding module, output
    blocks.L.hook_resid_pre        block L, input          (the stream entering the block)
    blocks.L.attn.hook_z           attention's output projection, input [batch, pos, head * d_head]
    blocks.L.hook_attn_out         attention module, output[0]
    blocks.L.attn.hook_pattern     attention module, output[1] (eager attention returns it)
    blocks.L.hook_resid_mid        the norm before the MLP, input (read only)
    blocks.L.mlp.hook_pre / _post  the MLP's first projection, output / its last one, input
    blocks.L.hook_mlp_out          MLP module, output
    blocks.L.hook_resid_post       block L, output
    ln_final.hook_normalized       final norm, output

q, k, v and the pre-softmax scores live inside the attention function (after rotary embeddings),
where no module boundary exists, so they are not offered here.

One request is one trace: every activation a page asks for is read, in the order the forward pass
produces it, at the positions asked for, and saved; writes (core.models.backend.Write: "add this
vector there") are applied where they belong; then, only if wanted, the logits or the per-token
loss. With `remote=True` the same block is serialized and sent, with a timeout and a cancel, and the
request (its prompts, duration, and bytes each way) is logged (core.models.remote).

Reading the attention pattern needs the step-by-step ("eager") attention; a request switches to it
only when it reads a pattern and runs the fused kernel otherwise, as HookedLM does.

Generation is one request too: Hugging Face's generate runs inside the trace, and the writes are
applied at every step at their absolute positions. To write the same tokens as
core.models.generation, decoding is greedy over scores that already hold the lab's seeded Gumbel
noise (RaceSampler), every row runs to max_new_tokens, and each row is cut at its first
end-of-text afterwards (rows never influence each other, so the cut rows are exact). The scores
of the race and the cut are core.models.generation's own (raced_scores, cut_at_eos).

Importing nnsight has process-wide effects: it patches torch.Tensor.backward (so `with
loss.backward():` opens a backward trace; a plain loss.backward() is unchanged) and mounts `.save()`
on every object, which this module takes off again. The first remote request registers this
project's packages for by-value pickling (nnsight's pull_env), so the functions a trace body calls
(visit, write_into) travel with it.

Three modules, one idea each: core.models.nnsight_sites (where each hook name lives in the wrapped
model, and what a trace body does there), core.models.nnsight_transport (one request to NDIF: send,
wait under a timeout and a cancel, explain failures), and this one (the lab's model interface built
from them: NNsightLM, and `connect` for a model on NDIF).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import nnsight
import torch
from nnsight.modeling import huggingface as _nn_hf
from nnsight.modeling.transformers import TransformersModel
from nnsight.schema.config import CONFIG

from core.models import catalog, generation
from core.models import remote as rm
from core.models import tokens as tok
from core.models.adapters import adapter_class
from core.models.backend import (
    PATTERN_SITES,
    Attribution,
    Lens,
    ReadoutWeights,
    Write,
    site_of,
)
from core.models.generation import BatchGeneration, Generation, SamplingSettings, _Noise
from core.models.hook_names import act_name, all_hook_names, layer_of, stream_hook
from core.models.nnsight_sites import READ_ONLY_SITES, UNSUPPORTED_SITES, hook_map, logits_out, visit
from core.models.nnsight_transport import MeasuredLocally, Submission, result_bytes, tensor_bytes

# nnsight mounts `.save()` on every Python object at import; that is process-wide, and any library
# testing hasattr(x, "save") would see it. We call nnsight.save(x) instead, so take it off again.
try:
    from nnsight._c import unmount as _unmount

    if _unmount is not None:
        _unmount("save")
except Exception:  # the optional C extension is missing: nothing was mounted
    pass
CONFIG.APP.REMOTE_LOGGING = False  # no spinner lines on the server's stdout

# -- sampling the same way HookedLM does, inside Hugging Face's generate --------------------------------
class RaceSampler:
    """A logits processor that makes greedy decoding pick exactly what core.models.generation picks:
    it returns scores / temperature (top-k masked) plus the same seeded Gumbel noise, so the argmax
    is the sampled token. Generators are made on first use (so the object pickles)."""

    def __init__(self, temperature: float, top_k: int | None, seeds: list[int]):
        self.temperature, self.top_k, self.seeds = temperature, top_k, list(seeds)
        self.noise = None

    def __call__(self, input_ids, scores):
        if self.noise is None:
            self.noise = _Noise(self.seeds)
        return generation.raced_scores(scores, self.temperature, self.top_k, self.noise)


# -- one request --------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """What one trace does, as plain data the trace body can carry to a server."""

    locations: list = field(default_factory=list)  # [(path, io, entries)] in forward order
    names: list = field(default_factory=list)  # hook names touched, for the log
    bytes_out: int = 0  # write tensors sent
    pattern: bool = False  # reads an attention pattern: needs eager attention


# -- the backend ----------------------------------------------------------------------------------------
class NNsightLM:
    """The lab's model interface (core.models.backend.ModelBackend) over an nnsight model.

    Build one with NNsightLM.local(folder) / NNsightLM.wrap(model, tokenizer) (runs here) or
    connect(repo_id) (runs on NDIF)."""

    def __init__(self, envoy, tokenizer, *, spec: str, name: str | None = None, remote: bool = False,
                 host: str | None = None, key_source: Callable[[], str | None] | None = None,
                 timeout_s: float = rm.REQUEST_TIMEOUT_S, is_bundled: bool = False):
        self._envoy = envoy
        self._module = envoy._module
        self.tokenizer = tokenizer
        self.spec = spec
        self.name = name or spec
        self.is_remote = remote
        self.is_bundled = is_bundled
        self.host = host or rm.host()
        self._key_source = key_source or (lambda: rm.api_key())
        self.timeout_s = timeout_s
        adapter = adapter_class(self._module.config.model_type)
        self._adapter = adapter(self._module)
        self.cfg = self._adapter.config()
        self._points = hook_map(self._module)
        self._names = [n for n in all_hook_names(self.cfg.n_layers,
                                                 has_pos_embed=self._adapter.pos_embed() is not None,
                                                 has_resid_mid=self.cfg.has_resid_mid)
                       if n in self._points]
        paths = {id(m): n for n, m in self._module.named_modules()}
        self._ln_path = paths[id(self._adapter.ln_final())]
        self._head_path = paths[id(self._module.get_output_embeddings())]
        self._out_proj_in_out = self.cfg.arch == "gpt2"  # Conv1D weights are stored [in, out]
        self._fixed_eager = adapter.attn_implementation == "eager"  # GPT-Neo has no fused attention
        self._lock = threading.RLock()  # one trace at a time per model: nnsight's interleaver is shared
        self._hooks: ContextVar[tuple] = ContextVar(f"nnsight_hooks_{id(self)}", default=())
        self.last: rm.RequestRecord | None = None
        # True: a local model serializes each request as a remote one would be and logs the bytes a
        # remote call would move (the request, and the compressed result); costs a little time
        self.measure = False

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def wrap(cls, model: torch.nn.Module, tokenizer, *, spec: str = "in-memory", name: str | None = None,
             is_bundled: bool = False) -> NNsightLM:
        """Wrap a transformers model already in memory (it is used, not copied; its attention
        implementation is set to the fused kernel, or eager for GPT-Neo)."""
        impl = adapter_class(model.config.model_type).attn_implementation
        model.set_attn_implementation("eager" if impl == "eager" else "sdpa")
        model.eval().requires_grad_(False)
        envoy = TransformersModel(model, tokenizer=_own_tokenizer(tokenizer), task="text-generation")
        return cls(envoy, tokenizer, spec=spec, name=name, is_bundled=is_bundled)

    @classmethod
    def local(cls, folder: str | Path, *, spec: str | None = None, name: str | None = None) -> NNsightLM:
        """Load a model folder (a hub snapshot, a tiny test model) to run traces on this machine."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        return cls.wrap(model, tokenizer, spec=spec or f"nnsight:{folder}", name=name)

    # -- hook points -----------------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        """The hook names this backend offers (q, k, v and scores are not: see the module docstring)."""
        return list(self._names)

    def _check(self, names: Iterable[str], *, writing: bool = False) -> None:
        for n in names:
            if n in self._points:
                if writing and site_of(n) in READ_ONLY_SITES:
                    raise rm.NotRemotable(f"{n} can be read but not written through nnsight here "
                                          "(write to the stream or to z instead).")
                continue
            if site_of(n) in UNSUPPORTED_SITES:
                raise rm.NotRemotable(
                    f"{n} lives inside the attention function (after rotary embeddings), where nnsight "
                    "has no module boundary to read; use the pattern, z or attn_out instead.")
            raise ValueError(f"Unknown hook point {n!r} for {self.name}; lm.hook_names() lists them all.")

    @contextmanager
    def hooks(self, fwd_hooks) -> Iterator[NNsightLM]:
        """Active writes for requests made in this thread inside the block: Write objects, or
        (name, fn) pairs; a Python function runs only on a local model."""
        pairs = [(h.name, h) if isinstance(h, Write) else tuple(h) for h in fwd_hooks]
        self._check([n for n, _ in pairs], writing=True)
        if self.is_remote:
            bad = [n for n, fn in pairs if not isinstance(fn, Write)]
            if bad:
                raise rm.NotRemotable(
                    "A remote model takes activation writes as data (core.models.backend.Write), not "
                    f"Python functions (at {', '.join(bad)}): the function would have to run on NDIF's "
                    "servers.")
        token = self._hooks.set(self._hooks.get() + tuple(pairs))
        try:
            yield self
        finally:
            self._hooks.reset(token)

    def _plan(self, reads: dict[str, tuple], hooks: Sequence = ()) -> _Plan:
        """Group reads {name: read spec} and the active hooks by module location, in forward order."""
        self._check(reads)
        by_loc: dict[tuple[str, str], dict] = {}
        plan = _Plan()
        for name, fn in hooks:
            p = self._points[name]
            entry = by_loc.setdefault((p.path, p.io), {"order": p.order, "names": {}})
            slot = entry["names"].setdefault(name, [p.slot, [], None])
            if isinstance(fn, Write):
                pos = fn.positions_tensor()
                slot[1].append((fn.mode, fn.value, fn.start_pos, pos, fn.head))
                plan.bytes_out += fn.nbytes
            else:
                slot[1].append(("fn", fn, layer_of(name)))
        for name, read in reads.items():
            p = self._points[name]
            entry = by_loc.setdefault((p.path, p.io), {"order": p.order, "names": {}})
            entry["names"].setdefault(name, [p.slot, [], None])[2] = read
            plan.pattern |= site_of(name) in PATTERN_SITES
        for (path, io_), entry in sorted(by_loc.items(), key=lambda kv: kv[1]["order"]):
            entries = [(n, s[0], s[1], s[2]) for n, s in entry["names"].items()]
            plan.locations.append((path, io_, entries))
            plan.names += [n for n, *_ in entries]
        return plan

    # -- running one request ---------------------------------------------------------------------
    def _inputs(self, tokens: torch.Tensor) -> dict:
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        if tokens.ndim == 1:
            tokens = tokens[None]
        return dict(input_ids=tokens, attention_mask=torch.ones_like(tokens), use_cache=False)

    def _attention(self, eager: bool) -> None:
        """Switch the attention kernel (callers hold the lock): eager only while a pattern is read."""
        if self._fixed_eager:
            return
        want = "eager" if eager else "sdpa"
        if self._module.config._attn_implementation != want:
            self._module.set_attn_implementation(want)

    def _submission(self) -> Submission:
        key = self._key_source()
        if not key:
            raise rm.BadKey(rm.KEY_HELP)
        return Submission(self._envoy.to_model_key(), self.host, key, self._envoy._remoteable_get_env())

    def _log(self, kind: str, tokens: torch.Tensor, names: Sequence[str], started: float, seconds: float,
             sent: int, received: int, status: str, message: str = "") -> None:
        texts = [self.tokenizer.decode(row.tolist()) for row in torch.as_tensor(tokens).reshape(
            -1, tokens.shape[-1])]
        rec = rm.RequestRecord(self.name, kind, "NDIF" if self.is_remote else "this machine",
                               rm.shown_prompts(texts), int(tokens.shape[0]), int(tokens.shape[-1]),
                               tuple(dict.fromkeys(names)), started, seconds, sent, received, status,
                               message)
        self.last = rec
        rm.record(rec)

    def _execute(self, kind: str, tokens: torch.Tensor, plan: _Plan, trace: Callable, *,
                 timeout_s: float | None = None, cancel: threading.Event | None = None,
                 progress: Callable[[float], None] | None = None) -> dict:
        """Run trace(backend) -> the dict the trace body saved; here, or on NDIF; logged either way.
        A remote request waits as timeout_s / cancel / progress say, else as core.models.remote.waiting
        set for this thread, else for self.timeout_s."""
        started, t0 = time.time(), time.perf_counter()
        sent = plan.bytes_out
        try:
            if not self.is_remote:
                measure = MeasuredLocally() if self.measure else None
                with self._lock:
                    self._attention(plan.pattern)
                    saved = trace(measure)
                sent = measure.sent if measure else sent
                received = result_bytes({"saved": saved}) if measure else tensor_bytes(saved)
                self._log(kind, tokens, plan.names, started, time.perf_counter() - t0, sent, received, "ok")
                return saved
            with self._lock:  # the trace is captured and serialized here; sending needs no lock
                self._attention(plan.pattern)
                sub = self._submission()
                trace(sub)
            sent = len(sub.blob or b"")
            how = rm.current_waiting()
            result = sub.send(timeout_s or how.timeout_s or self.timeout_s, cancel or how.cancel,
                              progress or how.progress)
            saved = result.get("saved") if isinstance(result, dict) else None
            if not isinstance(saved, dict):
                raise rm.JobFailed("NDIF answered without the values the request saved.")
            self._log(kind, tokens, plan.names, started, time.perf_counter() - t0, sent, sub.received, "ok")
            return saved
        except rm.RemoteRequestError as err:
            status = {rm.RequestTimeout: "timeout", rm.RequestCancelled: "cancelled"}.get(type(err))
            status = status or ("refused" if isinstance(err, rm.RequestRefused) else "failed")
            self._log(kind, tokens, plan.names, started, time.perf_counter() - t0, sent, 0, status, str(err))
            raise
        except BaseException as err:  # the caller stopped waiting (a page rerun, Stop, Ctrl-C) or a bug
            stopped = not isinstance(err, Exception)
            self._log(kind, tokens, plan.names, started, time.perf_counter() - t0, sent, 0,
                      "cancelled" if stopped else "failed",
                      "stopped while waiting" if stopped else f"{type(err).__name__}: {str(err)[:200]}")
            raise

    def run(self, tokens: torch.Tensor, reads: dict[str, tuple], *, logits=("all",), kind: str = "trace",
            **wait) -> tuple[torch.Tensor | None, dict]:
        """One trace: reads {name: ("all",) | ("at", positions) | ("lens", positions, ids, top_k) |
        ("proj", positions, vectors, in_out, path)} (see visit) under the active writes; logits ("all",),
        ("at", positions, ids or None), ("loss",) or None (the pass stops after the last read).
        Returns (logits part, {name or "lens:name": value})."""
        inputs = self._inputs(tokens)
        plan = self._plan(reads, self._hooks.get())
        envoy, locations, n_heads = self._envoy, plan.locations, self.cfg.n_heads
        ln_path, head_path, want = self._ln_path, self._head_path, logits
        tokens = inputs["input_ids"]

        def trace(backend):
            saved = None  # the trace body rebinds it here (local) or on the server (remote)
            with torch.no_grad(), envoy.trace(**inputs, backend=backend) as tracer:
                saved = nnsight.save({})
                for path, io_, entries in locations:
                    module = envoy.get(path)
                    value = module.output if io_ == "output" else module.input
                    new, got = visit(value, entries, 0, n_heads,
                                     lambda x: envoy.get(head_path)(envoy.get(ln_path)(x)),
                                     lambda p: envoy.get(p).weight)
                    saved.update(got)
                    if new is not None:
                        if io_ == "output":
                            module.output = new
                        else:
                            module.input = new
                if want is None:
                    tracer.stop()
                saved["logits"] = logits_out(envoy.output.logits, want, tokens)
            return saved

        saved = self._execute(kind, tokens, plan, trace, **wait)
        return saved.pop("logits", None), saved

    # -- the ModelBackend interface --------------------------------------------------------------
    def run_with_cache(self, tokens: torch.Tensor, names=None, *, grad: bool = False,
                       stop_at_layer: int | None = None) -> tuple[torch.Tensor | None, dict]:
        """(logits [batch, pos, d_vocab] or None with stop_at_layer, {name: activation}) under the
        active writes; names: None (every offered name), a list, or a predicate."""
        if grad:
            raise rm.NotRemotable("Gradients through an nnsight model: use core.models.backend."
                                  "attribution_scores, which takes them inside one trace.")
        if names is None:
            names = self._names
        elif callable(names):
            names = [n for n in self._names if names(n)]
        names = list(names)
        if stop_at_layer is not None:
            names = [n for n in names if (layer_of(n) is None and not n.startswith("ln_final"))
                     or (layer_of(n) is not None and layer_of(n) < stop_at_layer)]
        logits, cache = self.run(tokens, {n: ("all",) for n in names},
                                 logits=None if stop_at_layer is not None else ("all",))
        from core.models.hooked_lm import ActivationCache

        return logits, ActivationCache(cache)

    def forward(self, tokens: torch.Tensor, *, grad: bool = False, **kwargs) -> torch.Tensor:
        """Logits [batch, pos, d_vocab] under the active writes (all of them: mind the size remotely)."""
        if grad:
            raise rm.NotRemotable("Gradients through an nnsight model: use attribution_scores.")
        return self.run(tokens, {})[0]

    __call__ = forward

    def logits_at(self, tokens: torch.Tensor, positions: torch.Tensor, ids: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """Logits at one position per row [batch, d_vocab] (or only `ids` [batch, k])."""
        return self.run(tokens, {}, logits=("at", torch.as_tensor(positions), ids))[0]

    def next_token_logits(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), batch_size):
            tokens, lengths = self.tokenize_batch(texts[i: i + batch_size])
            out.append(self.logits_at(tokens, lengths - 1).float())
        return torch.cat(out) if out else torch.zeros(0, self.cfg.d_vocab)

    def loss(self, tokens: torch.Tensor, *, per_token: bool = False, mask: torch.Tensor | None = None,
             grad: bool = False) -> torch.Tensor:
        """Next-token cross-entropy under the active writes; computed in the trace, so only
        [batch, pos - 1] numbers come back. The mean, or per token; mask as in core.models.loss."""
        if grad:
            raise rm.NotRemotable("Gradients through an nnsight model: use attribution_scores.")
        losses = self.run(tokens, {}, logits=("loss",), kind="loss")[0]  # [batch, pos - 1]
        if per_token:
            return losses
        if mask is None:
            return losses.mean()
        weight = torch.as_tensor(mask)[:, 1:].to(losses.dtype)
        return (losses * weight).sum() / weight.sum().clamp_min(1.0)

    def read_at(self, tokens: torch.Tensor, names: Sequence[str], positions: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """{name: activation at one position per row}: only those vectors travel."""
        return self.run(tokens, {n: ("at", positions) for n in names}, logits=None)[1]

    def lens_logits_at(self, tokens, layers, positions, ids, top_k) -> Lens:
        """The logit lens computed in the trace: the final norm and unembedding run where the model is."""
        names = [stream_hook(L) for L in layers]
        reads = {n: ("lens", positions, ids, top_k) for n in dict.fromkeys(names)}
        _, got = self.run(tokens, reads, logits=None, kind="lens")
        parts = [got["lens:" + n] for n in names]
        return Lens(tuple(layers), torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]),
                    torch.stack([p[2] for p in parts]))

    def head_projections(self, tokens: torch.Tensor, layers: Sequence[int], positions: torch.Tensor,
                         vectors: torch.Tensor) -> torch.Tensor:
        """Each head's output (z @ W_O) at one position per row, projected on vectors [batch, d_model]:
        [layer, batch, head], computed where the weights are (direct logit attribution). Active
        writes apply."""
        positions, vectors = torch.as_tensor(positions), torch.as_tensor(vectors)
        names = [act_name("z", L) for L in layers]
        self._check(names)
        reads = {n: ("proj", positions, vectors, self._out_proj_in_out, self._points[n].path)
                 for n in dict.fromkeys(names)}
        _, got = self.run(tokens, reads, logits=None, kind="head projections")
        return torch.stack([got["proj:" + n] for n in names])

    def readout_weights(self, ids: torch.Tensor) -> ReadoutWeights:
        """The unembedding columns of ids, the final norm's weights and the attention output biases,
        read in one trace that stops before the model runs (core.models.backend.readout_weights)."""
        envoy, ids = self._envoy, torch.as_tensor(ids, dtype=torch.long)
        head_path, ln_path = self._head_path, self._ln_path
        out_paths = [self._points[act_name("z", L)].path for L in range(self.cfg.n_layers)]
        tokens = torch.tensor([[tok.bos_id(self.tokenizer)]])
        inputs = self._inputs(tokens)
        plan = self._plan({})
        plan.names = ["unembedding columns", "final norm", "attention output biases"]

        def trace(backend):
            saved = None
            with torch.no_grad(), envoy.trace(**inputs, backend=backend) as tracer:
                saved = nnsight.save({})
                head, ln = envoy.get(head_path), envoy.get(ln_path)
                saved["W_U"] = head.weight[ids.to(head.weight.device)].T.float().cpu()
                b_U = head.bias
                saved["b_U"] = None if b_U is None else b_U[ids.to(b_U.device)].float().cpu()
                saved["ln_weight"] = ln.weight.float().cpu()
                saved["ln_bias"] = None if getattr(ln, "bias", None) is None else ln.bias.float().cpu()
                biases = [envoy.get(p).bias for p in out_paths]
                saved["b_O"] = (None if any(b is None for b in biases)
                                else torch.stack([b.float().cpu() for b in biases]))
                tracer.stop()
            return saved

        got = self._execute("readout weights", tokens, plan, trace)
        return ReadoutWeights(got["W_U"], got["b_U"], got["ln_weight"], got["ln_bias"], got["b_O"])

    def attribution_scores(self, clean, corrupt, names, right, wrong, positions, direction) -> Attribution:
        """Attribution patching in one trace: both runs as one batch, the metric's gradient on the
        target rows, and only (a_source - a_target) . grad per component comes back."""
        self._check(names)
        if self._hooks.get():
            raise rm.NotRemotable("attribution_scores runs without active writes; leave the "
                                  "lm.hooks(...) block first.")
        src, tgt = (clean, corrupt) if direction == "denoise" else (corrupt, clean)
        tokens = torch.cat([torch.as_tensor(src), torch.as_tensor(tgt)])
        inputs = self._inputs(tokens)
        n = src.shape[0]
        plan = self._plan({})
        plan.names = list(names)
        points = [(self._points[m].path, self._points[m].io, self._points[m].slot) for m in names]
        order = sorted(range(len(names)), key=lambda i: self._points[names[i]].order)
        points = [points[i] for i in order]
        first = self._points[act_name("resid_pre", 0)]
        leaf = (first.path, first.io, first.slot)
        walk = [leaf] + [p for p in points if p != leaf]  # the stream entering block 0 first: the leaf
        envoy, n_heads = self._envoy, self.cfg.n_heads
        positions, right, wrong = torch.as_tensor(positions), torch.as_tensor(right), torch.as_tensor(wrong)

        def trace(backend):
            saved = None
            with torch.enable_grad(), envoy.trace(**inputs, backend=backend):
                saved = nnsight.save({})
                torch.set_grad_enabled(True)
                acts = {}
                for path, io_, slot in walk:
                    module = envoy.get(path)
                    value = module.output if io_ == "output" else module.input
                    if (path, io_, slot) == leaf:  # the frozen model's stream: gradients flow back to it
                        value = value.detach().requires_grad_(True)
                        module.input = value
                    acts[path + ":" + io_] = value[0] if isinstance(value, tuple) else value
                logits = envoy.output.logits
                at = logits[torch.arange(2 * n, device=logits.device), positions.repeat(2).to(logits.device)]
                at = at.float()  # [2 * batch, d_vocab]: the source rows, then the target rows
                both = right.repeat(2).to(at.device), wrong.repeat(2).to(at.device)
                metric = at[torch.arange(2 * n), both[0]] - at[torch.arange(2 * n), both[1]]
                saved["source_metric"] = metric[:n].detach().cpu()
                saved["target_metric"] = metric[n:].detach().cpu()
                keys = [path + ":" + io_ for path, io_, _ in points]
                grads = {}
                with metric[n:].sum().backward():
                    for key in reversed(keys):
                        grads[key] = acts[key].grad
                for (_, _, slot), key in zip(points, keys, strict=True):
                    diff = (acts[key][:n] - acts[key][n:]).float() * grads[key][n:].float()
                    if slot == "heads":
                        diff = diff.view(n, diff.shape[1], n_heads, -1)
                    saved[key] = diff.sum(-1).detach().cpu()
            return saved

        saved = self._execute("attribution", tokens, plan, trace)
        estimates = {names[i]: saved[points[j][0] + ":" + points[j][1]] for j, i in enumerate(order)}
        src_m, tgt_m = saved["source_metric"], saved["target_metric"]
        clean_m, corrupt_m = (src_m, tgt_m) if direction == "denoise" else (tgt_m, src_m)
        return Attribution(direction, estimates, clean_m, corrupt_m)

    # -- generation ------------------------------------------------------------------------------
    def generate_batch(self, tokens: torch.Tensor, settings: SamplingSettings | None = None, *,
                       seeds: list[int] | None = None, **wait) -> BatchGeneration:
        """Continue every row of tokens [batch, pos] (equal lengths) under the active writes, which
        apply at every step (position-aware, like HookedLM's). Same tokens as HookedLM's
        generate_batch: greedy at temperature 0, else the same seeded race (see RaceSampler)."""
        settings = settings or SamplingSettings()
        tokens, seeds, n_new = generation.batch_to_continue(tokens, settings, seeds, self.cfg.n_ctx)
        batch, n_prompt = tokens.shape
        if n_new == 0:
            return BatchGeneration(tokens.clone(), n_prompt, torch.zeros(batch, dtype=torch.long))
        plan = self._plan({}, self._hooks.get())
        envoy, locations, n_heads = self._envoy, plan.locations, self.cfg.n_heads
        pad = tok.pad_id(self.tokenizer)
        kwargs = dict(input_ids=tokens, attention_mask=torch.ones_like(tokens), max_new_tokens=n_new,
                      do_sample=False, num_beams=1, temperature=None, top_p=None,
                      top_k=None, eos_token_id=None, pad_token_id=pad)
        if not settings.greedy:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([RaceSampler(settings.temperature,
                                                                          settings.top_k, seeds)])

        def trace(backend):
            saved = None
            with envoy.generate(**kwargs, backend=backend) as tracer:
                saved = nnsight.save({})
                if locations:
                    for step in tracer.iter[:n_new]:
                        offset = 0 if step == 0 else n_prompt + step - 1
                        for path, io_, entries in locations:
                            module = envoy.get(path)
                            value = module.output if io_ == "output" else module.input
                            new, _ = visit(value, entries, offset, n_heads)
                            if new is not None:
                                if io_ == "output":
                                    module.output = new
                                else:
                                    module.input = new
                saved["ids"] = tracer.result.detach().cpu()
            return saved

        ids = self._execute("generate", tokens, plan, trace, **wait)["ids"]  # [batch, n_prompt + n_new]
        eos = self.tokenizer.eos_token_id if settings.stop_at_eos else None
        return generation.cut_at_eos(ids, n_prompt, eos)

    def generate(self, prompt, settings: SamplingSettings | None = None, **kwargs) -> Generation:
        """Continue `prompt` (text or tokens [1, pos]), as core.models.generation.generate does."""
        return generation.generate(self, prompt, settings, **kwargs)

    # -- weights (local only) --------------------------------------------------------------------
    def _weights_here(self, what: str) -> None:
        if self.is_remote:
            raise rm.NotRemotable(
                f"{what} needs the weights in this process, and a remote model's weights stay on NDIF. "
                "Use lens_logits / head_projections, which compute on the server.")

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """Logits from a residual-stream vector: final norm, then the unembedding (local models)."""
        self._weights_here("unembed()")
        with torch.no_grad():
            return self._module.get_output_embeddings()(self._adapter.ln_final()(resid))

    @property
    def W_U(self) -> torch.Tensor:
        self._weights_here("W_U")
        return self._module.get_output_embeddings().weight.T

    @property
    def W_E(self) -> torch.Tensor:
        self._weights_here("W_E")
        return self._adapter.embed().weight

    def attention_weights(self, layer: int):
        self._weights_here("attention_weights()")
        return self._adapter.attention_weights(layer, self.cfg)

    # -- tokens (the tokenizer is here either way) -------------------------------------------------
    def to_tokens(self, text, prepend_bos: bool = True) -> torch.Tensor:
        return tok.to_tokens(self.tokenizer, text, prepend_bos=prepend_bos, max_len=self.cfg.n_ctx)

    def tokenize_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return tok.tokenize_batch(self.tokenizer, texts, max_len=self.cfg.n_ctx)

    def single_token_id(self, word: str) -> int | None:
        return tok.single_token_id(self.tokenizer, word)

    def to_str_tokens(self, text_or_tokens) -> list[str]:
        return tok.to_str_tokens(self.tokenizer, text_or_tokens)

    def to_string(self, tokens) -> str:
        return self.tokenizer.decode(torch.as_tensor(tokens).flatten().tolist())

    def unknown_words(self, text: str) -> list[str]:
        return tok.unknown_words(self.tokenizer, text)

    def prepare_prompt(self, text: str, max_tokens: int | None = None) -> tok.Prompt:
        return tok.prepare_prompt(self, text, max_tokens)

    def __repr__(self) -> str:
        c, where = self.cfg, "NDIF" if self.is_remote else "local"
        return (f"NNsightLM({self.name!r}, {where}, {c.arch}, {c.n_layers} layers x {c.n_heads} heads, "
                f"d_model={c.d_model})")


def _own_tokenizer(tokenizer):
    """nnsight sets padding on the tokenizer it is given; give it a copy so ours stays as it was."""
    import copy

    return copy.deepcopy(tokenizer)


# -- remote models ----------------------------------------------------------------------------------
def connect(repo_id: str, *, key_source: Callable[[], str | None] | None = None, host: str | None = None,
            check: bool = True, timeout_s: float = rm.REQUEST_TIMEOUT_S, folder: str | None = None
            ) -> NNsightLM:
    """A remote model: its config and tokenizer are read here (the Hugging Face hub or its cache, or
    `folder`), its weights stay on NDIF. With check=True, NDIF must list it as running and accept
    the key; anything wrong raises RemoteModelError (a ModelLoadError), so the model in use stays."""
    key_source = key_source or (lambda: rm.api_key())
    base = (host or rm.host()).rstrip("/")
    if check:
        key = key_source()
        listing = rm.list_models(key, url=base)
        if not listing.has_key:
            raise rm.RemoteModelError(rm.KEY_HELP)
        if not listing.reachable:
            raise rm.RemoteModelError(listing.message)
        served = listing.find(repo_id)
        if served is None:
            raise rm.RemoteModelError(f"NDIF does not serve {repo_id} right now; pick one of the models "
                                      "it lists.")
        if not served.ready:
            raise rm.RemoteModelError(f"NDIF lists {repo_id} as {served.state.lower()}, not running; try "
                                      "again in a few minutes.")
        rm.check_key(key, url=base)
    source = folder or repo_id
    # only a few small files, from the hub cache when there (and only from it when the hub is down)
    offline = folder is not None or not catalog.hub_reachable()
    try:
        from transformers import AutoConfig, AutoTokenizer

        config = AutoConfig.from_pretrained(source, trust_remote_code=False, local_files_only=offline)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, local_files_only=offline)
    except Exception as err:
        where = ("this machine's Hugging Face cache (the hub cannot be reached from here)" if offline
                 else "the Hugging Face hub")
        raise rm.RemoteModelError(
            f"The config and tokenizer of {repo_id} could not be read from {where} "
            f"({type(err).__name__}). Gated models (Llama) need their licence accepted on the hub and "
            "HF_TOKEN set on this server.") from err
    if config.model_type not in rm.SUPPORTED_TYPES:
        raise rm.RemoteModelError(
            f"{repo_id} is a {config.model_type!r} model; the lab maps hook points for GPT-2, GPT-Neo, "
            "GPT-NeoX and Llama models only.")
    impl = adapter_class(config.model_type).attn_implementation
    # NDIF's list gives canonical repo ids: seed nnsight's id cache so the model key is built without
    # asking the hub to canonicalise it again.
    _nn_hf._ID_CACHE.setdefault(repo_id, repo_id)
    envoy = TransformersModel(repo_id, task="text-generation", tokenizer=_own_tokenizer(tokenizer),
                              config=config, attn_implementation="eager" if impl == "eager" else "sdpa")
    return NNsightLM(envoy, tokenizer, spec=rm.remote_spec(repo_id), name=f"{repo_id} (NDIF)", remote=True,
                     host=base, key_source=key_source, timeout_s=timeout_s)
