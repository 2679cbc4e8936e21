"""Loading a model: the bundled one, a Hugging Face hub id, a local folder, or one already cached.

Everything goes through `transformers` (AutoConfig, then AutoModelForCausalLM) with our hooked eager
attention. Remote code is never run. Before any weights are read, the parameter count is computed
from the config alone (on PyTorch's "meta" device, which allocates nothing), so an oversized model
is refused before it fills memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from core.models import hooked_attention
from core.models.adapters import FAMILY_NAMES, SUPPORTED, adapter_class
from core.models.hooked_lm import HookedLM
from core.models.params import count_params

BUNDLED = "bundled"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "bundled"
DEFAULT_MAX_PARAMS = 500_000_000  # override with the environment variable LAB_MAX_MODEL_PARAMS
REBUILD_HINT = "Rebuild it with: python -m core.bundled.train"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why in words a learner can act on."""


def count_params_from_config(config) -> int:
    """Parameters of a model built from this config, without allocating its weights."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    return count_params(model)


def _load_config(source: str, spec: str):
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        if Path(source).is_dir():
            raise ModelLoadError(f"{spec!r} is a folder but not a model (no usable config.json).") from err
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = ("the hub is not reachable from here" if offline
               else "it is not on the hub, or the hub is not reachable")
        raise ModelLoadError(
            f"Could not load {spec!r}: {why}, and it is not in the local cache. "
            "Pick the bundled model or a model listed as available locally."
        ) from err


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment ("1.5e9" works); a malformed value means the default."""
    try:
        return max(1, int(float(os.environ.get(name, default))))
    except ValueError:
        return default


def max_params_budget() -> int:
    """The parameter budget: LAB_MAX_MODEL_PARAMS if set (e.g. "1.5e9"), else 500M."""
    return env_int("LAB_MAX_MODEL_PARAMS", DEFAULT_MAX_PARAMS)


def load_model(spec: str | None = None, *, max_params: int | None = None,
               dtype: torch.dtype = torch.float32) -> HookedLM:
    """Load a model by spec: None or "bundled", a hub id like "gpt2", or a local folder path."""
    max_params = max_params if max_params is not None else max_params_budget()
    spec = (spec or BUNDLED).strip()
    is_bundled = spec == BUNDLED
    source = str(BUNDLED_DIR) if is_bundled else spec
    if is_bundled and not (BUNDLED_DIR / "model.safetensors").is_file():
        raise ModelLoadError(f"The bundled model is missing from {BUNDLED_DIR}. {REBUILD_HINT}")
    config = _load_config(source, spec)
    if config.model_type not in SUPPORTED:
        raise ModelLoadError(
            f"{spec!r} is a {config.model_type!r} model; this lab supports the {FAMILY_NAMES} "
            "families."
        )
    hooked_attention.register()
    n_params = count_params_from_config(config)
    if n_params > max_params:
        raise ModelLoadError(
            f"{spec!r} has {n_params / 1e6:,.0f}M parameters, over this app's budget of "
            f"{max_params / 1e6:,.0f}M (set LAB_MAX_MODEL_PARAMS to change it). On a CPU, and within "
            "Streamlit Community Cloud's memory, a smaller model keeps the pages interactive."
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, config=config, dtype=dtype, trust_remote_code=False,
            attn_implementation=adapter_class(config.model_type).attn_implementation,
        )
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except Exception as err:  # any failure reading files (safetensors, tokenizer) becomes a message
        hint = f" {REBUILD_HINT}" if is_bundled else ""
        raise ModelLoadError(f"Could not read the weights of {spec!r}: {err}.{hint}") from err
    model.requires_grad_(False)
    name = "Bundled model (synthetic world)" if is_bundled else spec
    return HookedLM(model, tokenizer, spec=spec, display_name=name, is_bundled=is_bundled)


def wrap(model, tokenizer, *, spec: str = "in-memory", name: str | None = None,
         is_bundled: bool = False) -> HookedLM:
    """Wrap a transformers model already in memory (e.g. one just built or trained) as a HookedLM."""
    hooked_attention.register()
    model.set_attn_implementation(adapter_class(model.config.model_type).attn_implementation)
    return HookedLM(model, tokenizer, spec=spec, display_name=name, is_bundled=is_bundled)
