"""Checking an adapter against the model from its files alone, before PEFT builds anything.

PEFT allocates every A and B an adapter_config.json asks for before it reads a single weight, so a
240 KB file that says r = 100000 once made the server allocate 3 GB. The lab reads first:

1. adapter_config.json: LoRA or IA3, and none of the features that would change the arithmetic the
   page draws (DoRA, extra trained modules, replicated layers, ...). Target modules must be a list of
   module names, not a pattern: a regular expression from a file could keep the server's CPU busy for
   ever. From that, PEFT's own matching rule says which of *this* model's modules it would adapt;
   each must be a weight matrix, and its rank r must be between 1 and min(d_in, d_out), since a
   higher rank adds nothing but memory.
2. the safetensors header, a JSON table at the start of the file that gives every tensor's name,
   dtype and shape: it must hold exactly the tensors those modules need (lora_A [r, d_in],
   lora_B [d_out, r], or IA3's l [d_out, 1] / [1, d_in]), in a floating-point dtype.
3. memory: a copy of the model plus the adapter, next to what the session holds, must fit the
   session's budget (core.models.budget).

Only then are the weights read, and refused if any is NaN or infinite, or larger in size than
MAX_ABS_WEIGHT: 1e38 is a finite float32, but B @ A of such numbers is not, and every picture of the
update (its norm, its singular values) would fail.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import torch
from peft import IA3Config, LoraConfig
from peft.tuners.tuners_utils import check_target_module_exists
from peft.utils.other import get_pattern_key
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors

from core.interp.finetune.adapter_files import CONFIG, WEIGHTS, AdapterFiles, AdapterLoadError
from core.interp.finetune.targets import matrix_dims

MAX_HEADER_BYTES = 1_000_000  # the JSON table at the start of a safetensors file
MAX_ABS_WEIGHT = 1e3  # a trained adapter's entries are about 0.01 to 1; IA3's scales about 1
MAX_ALPHA = 1e4
MAX_NAMES = 10_000  # entries in target_modules, rank_pattern, ...
FLOAT_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")  # a module name, never a pattern
PREFIX = "base_model.model."  # how PEFT's save_pretrained names the adapter's tensors
# Config fields that change what the adapter computes; a truthy value is refused.
UNSUPPORTED = {
    "use_dora": "DoRA (a learned magnitude per column)",
    "modules_to_save": "whole modules trained next to the adapter",
    "layer_replication": "replicated layers",
    "lora_bias": "a trained bias in lora_B",
    "use_qalora": "QA-LoRA",
    "trainable_token_indices": "trained token embeddings",
    "alora_invocation_tokens": "activated LoRA",
    "target_parameters": "adapted parameters instead of modules",
    "megatron_config": "Megatron layers",
    "use_bdlora": "block-diagonal LoRA",
}


@dataclass(frozen=True)
class AdapterPlan:
    """What PEFT will build for this adapter on this model, worked out from the files alone."""

    method: str  # "lora" or "ia3"
    peft_config: LoraConfig | IA3Config  # rebuilt from the checked fields only
    shapes: dict[str, tuple[int, ...]]  # tensor name (as saved) -> shape
    raw_config: dict  # the file's settings, for the page to show

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes.values())

    @property
    def rank(self) -> int | None:
        ranks = {s[0] for k, s in self.shapes.items() if k.endswith("lora_A.weight")}
        return max(ranks) if ranks else None


def read_config(blob: bytes) -> dict:
    try:
        config = json.loads(blob.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AdapterLoadError(f"{CONFIG} is not a readable JSON file ({str(err)[:200]}).") from err
    if not isinstance(config, dict):
        raise AdapterLoadError(f"{CONFIG} must hold a JSON object (settings by name), "
                               f"not a {type(config).__name__}.")
    return config


def read_header(blob: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a safetensors file's header, checked for sense: every
    tensor's bytes lie inside the file and match its dtype and shape."""
    damaged = f"{WEIGHTS} is damaged or not a safetensors file"
    if len(blob) < 8:
        raise AdapterLoadError(f"{damaged} (too short).")
    n = int.from_bytes(blob[:8], "little")
    if n > MAX_HEADER_BYTES or 8 + n > len(blob):
        raise AdapterLoadError(f"{damaged} (its header claims {n:,} bytes).")
    try:
        header = json.loads(blob[8: 8 + n].decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise AdapterLoadError(f"{damaged} (its header is not JSON).") from err
    if not isinstance(header, dict):
        raise AdapterLoadError(f"{damaged} (its header is not a table).")
    data_len, out = len(blob) - 8 - n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise AdapterLoadError(f"{damaged} (entry {name[:80]!r}).")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in FLOAT_DTYPES:
            raise AdapterLoadError(f"{WEIGHTS} holds a {str(dtype)[:20]} tensor ({name[:80]!r}); only "
                                   f"floating-point weights ({', '.join(FLOAT_DTYPES)}) are read.")
        ints = (isinstance(shape, list) and len(shape) <= 4 and isinstance(offsets, list)
                and len(offsets) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                              for x in [*shape, *offsets]))
        if not ints or not offsets[0] <= offsets[1] <= data_len \
                or offsets[1] - offsets[0] != math.prod(shape) * FLOAT_DTYPES[dtype]:
            raise AdapterLoadError(f"{damaged} (tensor {name[:80]!r} does not fit the file).")
        out[name] = (dtype, tuple(shape))
    return out


def _names(value, field: str) -> list[str]:
    """A list of plain module names from the config (a single name is accepted as a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_NAMES or not all(
            isinstance(v, str) and PLAIN_NAME.fullmatch(v) for v in value):
        raise AdapterLoadError(
            f"{CONFIG}: {field} must be a list of module names (such as 'c_attn' or "
            "'model.layers.0.self_attn.q_proj'); patterns are not read, since a regular expression from a "
            "file could keep the server busy for ever.")
    return list(value)


def _number(value, field: str, lo: float, hi: float, integer: bool = False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not (lo <= value <= hi):
        kind = "a whole number" if integer else "a number"
        raise AdapterLoadError(f"{CONFIG}: {field} must be {kind} from {lo:g} to {hi:g}, "
                               f"not {str(value)[:40]}.")
    return value


def _pattern(value, field: str, lo: float, hi: float, integer: bool) -> dict:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict) or len(value) > MAX_NAMES:
        raise AdapterLoadError(f"{CONFIG}: {field} must map module names to numbers.")
    _names(list(value), field)
    return {k: _number(v, f"{field}[{k!r}]", lo, hi, integer) for k, v in value.items()}


def _clean_config(config: dict, fan_in_fan_out: bool):
    """A PEFT config built only from the fields this page honours, each checked."""
    kind = config.get("peft_type")
    if kind not in ("LORA", "IA3"):
        raise AdapterLoadError(f"This page reads LoRA and IA3 adapters, not {str(kind)[:40]!r}.")
    used = [words for field, words in UNSUPPORTED.items() if config.get(field)]
    if used:
        raise AdapterLoadError(f"This adapter uses {', '.join(used)}, which this page does not read: "
                               "only plain LoRA and IA3 adapters.")
    if config.get("target_modules") is None:
        raise AdapterLoadError(f"{CONFIG} lists no target_modules.")
    common = {"target_modules": _names(config["target_modules"], "target_modules"),
              "fan_in_fan_out": fan_in_fan_out, "inference_mode": True}
    if config.get("exclude_modules") is not None:
        common["exclude_modules"] = _names(config["exclude_modules"], "exclude_modules")
    try:
        if kind == "IA3":
            ff = _names(config.get("feedforward_modules") or [], "feedforward_modules")
            return "ia3", IA3Config(**common, feedforward_modules=ff, init_ia3_weights=True)
        if config.get("bias", "none") != "none":
            raise AdapterLoadError("This adapter trains biases too (bias != 'none'); this page reads plain "
                                   "LoRA adapters only.")
        layers = config.get("layers_to_transform")
        if layers is not None:
            layers = [layers] if isinstance(layers, int) else layers
            if not isinstance(layers, list) or len(layers) > MAX_NAMES:
                raise AdapterLoadError(f"{CONFIG}: layers_to_transform must be a list of layer numbers.")
            layers = [_number(i, "layers_to_transform", 0, MAX_NAMES, integer=True) for i in layers]
        pattern = config.get("layers_pattern")
        lora = LoraConfig(
            **common, r=_number(config.get("r"), "r", 1, 1e9, integer=True),
            lora_alpha=_number(config.get("lora_alpha", 8), "lora_alpha", 1e-6, MAX_ALPHA),
            rank_pattern=_pattern(config.get("rank_pattern"), "rank_pattern", 1, 1e9, integer=True),
            alpha_pattern=_pattern(config.get("alpha_pattern"), "alpha_pattern", 1e-6, MAX_ALPHA, False),
            use_rslora=bool(config.get("use_rslora", False)), lora_dropout=0.0, bias="none",
            layers_to_transform=layers,
            layers_pattern=None if pattern in (None, [], "") else _names(pattern, "layers_pattern"),
            init_lora_weights=False,  # every weight is read from the file; no init computation
        )
        return "lora", lora
    except (TypeError, ValueError) as err:
        if isinstance(err, AdapterLoadError):
            raise
        words = " ".join(str(err).split())[:300]
        raise AdapterLoadError(f"{CONFIG} is not one PEFT accepts: {words}") from err


def plan(lm, files: AdapterFiles) -> AdapterPlan:
    """Check an adapter's config and header against lm; the plan of what PEFT will build."""
    config = read_config(files.config)
    header = read_header(files.weights)
    modules = dict(lm.model.named_modules())
    fan_in_fan_out = lm.cfg.arch == "gpt2"  # GPT-2's Conv1D stores [d_in, d_out]
    method, cfg = _clean_config(config, fan_in_fan_out)
    base = str(config.get("base_model_name_or_path") or "another model")[:100]
    targeted = {name: m for name, m in modules.items() if name and check_target_module_exists(cfg, name)}
    if not targeted:
        raise AdapterLoadError(f"This adapter names no module of {lm.name} (it was saved for {base!r}).")
    shapes = {}
    for name, module in targeted.items():
        dims = matrix_dims(module)
        if dims is None:
            raise AdapterLoadError(f"This adapter targets {name!r}, which is a {type(module).__name__} in "
                                   f"{lm.name}, not a weight matrix (it was saved for {base!r}).")
        d_out, d_in = dims
        if method == "ia3":
            ff = any(name.endswith(k) for k in cfg.feedforward_modules)
            shapes[f"{PREFIX}{name}.ia3_l"] = (1, d_in) if ff else (d_out, 1)
            continue
        r = cfg.rank_pattern.get(get_pattern_key(cfg.rank_pattern.keys(), name), cfg.r)
        if r > min(d_in, d_out):
            raise AdapterLoadError(
                f"The adapter's rank r = {r:,} for {name!r} is larger than that matrix's smaller side "
                f"({min(d_in, d_out)}): a rank-r update of a {d_out} x {d_in} matrix can have rank at most "
                f"{min(d_in, d_out)}, so this file was not made for {lm.name} (it says {base!r}).")
        shapes[f"{PREFIX}{name}.lora_A.weight"] = (r, d_in)
        shapes[f"{PREFIX}{name}.lora_B.weight"] = (d_out, r)
    found = {k: s for k, (_, s) in header.items()}
    missing = sorted(set(shapes) - set(found))
    if missing:
        raise AdapterLoadError(f"{WEIGHTS} lacks {len(missing)} of the adapter's weights (e.g. "
                               f"{missing[0][len(PREFIX):]!r}): it does not fit {lm.name}, or the file is "
                               "incomplete.")
    extra = sorted(set(found) - set(shapes))
    if extra:
        raise AdapterLoadError(f"{WEIGHTS} holds {len(extra)} tensor(s) this adapter's config does not "
                               f"explain (e.g. {extra[0][:100]!r}): it does not fit {lm.name} (it was saved "
                               f"for {base!r}).")
    wrong = [k for k in shapes if found[k] != shapes[k]]
    if wrong:
        k = wrong[0]
        raise AdapterLoadError(f"This adapter does not fit {lm.name} (it was saved for {base!r}): "
                               f"{len(wrong)} tensor(s) have the wrong shape, e.g. {k[len(PREFIX):]!r} is "
                               f"{list(found[k])} where this model needs {list(shapes[k])}.")
    return AdapterPlan(method, cfg, shapes, config)


def read_weights(files: AdapterFiles, plan_: AdapterPlan) -> dict[str, torch.Tensor]:
    """The adapter's tensors (float32), after the header was checked; refused unless every entry is
    finite and at most MAX_ABS_WEIGHT in size."""
    try:
        tensors = load_tensors(files.weights)
    except (SafetensorError, ValueError, RuntimeError, OSError, KeyError) as err:  # a header we passed
        raise AdapterLoadError(f"{WEIGHTS} is damaged: {str(err)[:200]}") from err
    out = {}
    for name in plan_.shapes:
        t = tensors[name].float()
        if not bool(torch.isfinite(t).all()):
            raise AdapterLoadError(f"{WEIGHTS} holds NaN or infinite numbers (in {name[len(PREFIX):]!r}): "
                                   "an adapter trained to such values cannot be used.")
        biggest = float(t.abs().max()) if t.numel() else 0.0
        if biggest > MAX_ABS_WEIGHT:
            raise AdapterLoadError(f"{WEIGHTS} holds a weight of size {biggest:.3g} (in "
                                   f"{name[len(PREFIX):]!r}); trained adapters stay far below "
                                   f"{MAX_ABS_WEIGHT:g}, and the update B @ A of such numbers overflows.")
        out[name] = t
    return out
