"""Loading a model: the bundled one, a Hugging Face hub id, or a local folder.

A spec is first *resolved* (resolve_spec): it becomes one canonical name, so that `x`, `x/`, `//x`
and `./x` are one model and one cache entry, and it is checked against the rules for where it came
from. A folder named by a link must lie under this server's model roots (the Hugging Face cache and
the folders in LAB_MODEL_ROOTS); anything else a link names gets one neutral message that does not
say whether the path exists. A folder typed by someone at the machine itself may be anywhere.

A hub id is read from the local cache whenever the cache holds it (no network at all); only a model
that is not cached is downloaded, and only if the hub can be reached (core.models.catalog), so an
offline machine answers at once. Everything goes through `transformers` with our hooked eager
attention, from local files only; remote code is never run. Before any weights are read, the
parameter count is computed from the config alone (on PyTorch's "meta" device, which allocates
nothing), so an oversized model is refused before it fills memory.

Whatever the spec (a path with a 300-character component, a NUL byte, a JSON file, /proc), loading
either returns a model or raises ModelLoadError with a message a learner can act on: no other
exception leaves load_model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from core.models import catalog, hooked_attention
from core.models.adapters import FAMILY_NAMES, SUPPORTED, adapter_class
from core.models.hooked_lm import HookedLM
from core.models.norms import apply_saved_norms
from core.models.params import count_params

BUNDLED = "bundled"
BUNDLED_NAME = "Bundled model (synthetic world)"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "bundled"
DEFAULT_MAX_PARAMS = 500_000_000  # override with the environment variable LAB_MAX_MODEL_PARAMS
REBUILD_HINT = "Rebuild it with: python -m core.bundled.train"
MAX_SPEC_CHARS = 512  # no hub id (96) or sensible folder path is longer
SHOWN_CHARS = 80  # how much of a spec a message repeats
ROOTS_ENV = "LAB_MODEL_ROOTS"  # folders (os.pathsep-separated) a link may name models under
LINK_REFUSED = ("A link can name a model on the Hugging Face hub (like gpt2) or one in this server's "
                "model folders; it cannot open this one. Pick a model in the sidebar instead.")
# Files a hub download fetches: configs, tokenizers, and one format of weights (see _weight_patterns).
_META_PATTERNS = ["*.json", "*.txt", "*.model", "tokenizer*"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why in words a learner can act on."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved spec. spec is canonical: "bundled", a hub id, or an absolute, symlink-free folder."""

    spec: str
    kind: Literal["bundled", "hub", "folder"]

    @property
    def folder(self) -> Path | None:
        """Where its files are now (None for a hub model that is not in the local cache)."""
        if self.kind == "bundled":
            return BUNDLED_DIR
        if self.kind == "folder":
            return Path(self.spec)
        return catalog.cached_snapshot(self.spec)


def shown(spec: str) -> str:
    """A spec as a message repeats it: quoted, and cut to SHOWN_CHARS characters."""
    text = spec if len(spec) <= SHOWN_CHARS else spec[:SHOWN_CHARS] + "…"
    return repr(text)


def is_hub_id(spec: str) -> bool:
    """Shaped like a hub id ("gpt2", "EleutherAI/pythia-70m"), by the hub's own rules."""
    return bool(_HUB_ID.match(spec)) and "--" not in spec and ".." not in spec and not spec.endswith(".git")


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "~", ".", "\\")) or not is_hub_id(spec)


def _real(path: str) -> Path | None:
    """The absolute, symlink-free form of a path, or None if the OS cannot even spell it."""
    try:
        return Path(os.path.realpath(os.path.expanduser(path)))
    except (OSError, ValueError, RuntimeError):
        return None


def link_roots() -> list[Path]:
    """Folders a link may name models under: the hub cache and each folder in LAB_MODEL_ROOTS."""
    roots = [str(catalog.hub_cache_dir())]
    roots += [p for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [r for r in (_real(p) for p in roots) if r is not None]


def _under_roots(path: Path) -> bool:
    return any(path == root or root in path.parents for root in link_roots())


def resolve_spec(spec: str | None, *, any_folder: bool = True) -> ModelSource:
    """The canonical source for a spec, or ModelLoadError saying why it cannot be one.

    any_folder=False applies the rule for links (and for shared servers): folders only under
    link_roots(), one neutral message for everything else. True is for a person at the machine.
    """
    text = "" if spec is None else str(spec).strip()
    if text in ("", BUNDLED):
        return ModelSource(BUNDLED, "bundled")
    if len(text) > MAX_SPEC_CHARS:
        if not any_folder:
            raise ModelLoadError(LINK_REFUSED)
        raise ModelLoadError(f"That model name is {len(text):,} characters long; hub ids and folder "
                             f"paths here are at most {MAX_SPEC_CHARS}.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ModelLoadError(LINK_REFUSED if not any_folder
                             else "A model id or folder cannot contain control characters.")
    if not _looks_like_path(text):
        if any_folder:  # like transformers: an existing relative folder wins over the hub id
            local = _real(text)
            if local is not None and os.path.isdir(local):
                return ModelSource(str(local), "folder")
        return ModelSource(text, "hub")
    path = _real(text)
    is_dir = path is not None and os.path.isdir(path)
    if not any_folder:
        if not (is_dir and _under_roots(path)):
            raise ModelLoadError(LINK_REFUSED)
        return ModelSource(str(path), "folder")
    if not is_dir:
        exists = path is not None and os.path.exists(path)
        raise ModelLoadError(f"{shown(text)} is a file, not a model folder." if exists
                             else f"No such folder: {shown(text)}.")
    return ModelSource(str(path), "folder")


def canonical_spec(spec: str | None, *, any_folder: bool = True) -> str:
    """resolve_spec(...).spec: the one name every spelling of a model maps to."""
    return resolve_spec(spec, any_folder=any_folder).spec


def count_params_from_config(config) -> int:
    """Parameters of a model built from this config, without allocating its weights."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    return count_params(model)


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment ("1.5e9" works); a malformed value means the default."""
    try:
        return max(1, int(float(os.environ.get(name, default))))
    except (ValueError, OverflowError):
        return default


def max_params_budget() -> int:
    """The parameter budget: LAB_MAX_MODEL_PARAMS if set (e.g. "1.5e9"), else 500M."""
    return env_int("LAB_MAX_MODEL_PARAMS", DEFAULT_MAX_PARAMS)


def offline_message(spec: str) -> str:
    local = catalog.cached_model_ids()
    here = f" Models on this machine: {', '.join(local)}." if local else ""
    name = f"{catalog.CURATED[spec]} ({shown(spec)})" if spec in catalog.CURATED else shown(spec)
    return (f"{name} is not on this machine, and the Hugging Face hub cannot be reached from "
            f"here to download it. Pick the bundled model or one marked as on this machine.{here}")


def _read_config(folder: Path, spec: str):
    try:
        return AutoConfig.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except Exception as err:
        raise ModelLoadError(f"{shown(spec)} is a folder but not a model (no usable config.json).") from err


def _check_config(config, spec: str, max_params: int) -> None:
    if getattr(config, "model_type", None) not in SUPPORTED:
        raise ModelLoadError(f"{shown(spec)} is a {getattr(config, 'model_type', None)!r} model; this lab "
                             f"supports the {FAMILY_NAMES} families.")
    n_params = count_params_from_config(config)
    if n_params > max_params:
        raise ModelLoadError(
            f"{shown(spec)} has {n_params / 1e6:,.0f}M parameters, over this app's budget of "
            f"{max_params / 1e6:,.0f}M (set LAB_MAX_MODEL_PARAMS to change it). On a CPU, and within "
            "Streamlit Community Cloud's memory, a smaller model keeps the pages interactive."
        )


def _weight_patterns(repo_id: str) -> list[str]:
    """One weight format: safetensors when the repo has them, else the PyTorch .bin files."""
    from huggingface_hub import list_repo_files

    files = list_repo_files(repo_id)
    if any(f.endswith(".safetensors") for f in files):
        return ["*.safetensors"]
    return ["pytorch_model*.bin"]


def _download(repo_id: str, max_params: int) -> Path:
    """Fetch a hub model into the cache: its config first (checked against the budget), then the rest."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    cache = catalog.hub_cache_dir()
    try:
        config_path = Path(hf_hub_download(repo_id, catalog.CONFIG_FILE, cache_dir=cache, etag_timeout=5))
        _check_config(_read_config(config_path.parent, repo_id), repo_id, max_params)
        folder = snapshot_download(repo_id, cache_dir=cache, etag_timeout=5,
                                   allow_patterns=_META_PATTERNS + _weight_patterns(repo_id))
    except ModelLoadError:
        raise
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as err:
        raise ModelLoadError(f"{shown(repo_id)} is not a model on the Hugging Face hub (or it is "
                             "private or gated).") from err
    except Exception as err:
        raise ModelLoadError(f"Downloading {shown(repo_id)} from the hub failed "
                             f"({type(err).__name__}). Try again, or pick a model on this machine.") from err
    return Path(folder)


def _folder_for(source: ModelSource, max_params: int) -> Path:
    if source.kind == "bundled" and not (BUNDLED_DIR / "model.safetensors").is_file():
        raise ModelLoadError(f"The bundled model is missing from {BUNDLED_DIR}. {REBUILD_HINT}")
    folder = source.folder
    if folder is not None:
        return folder
    if not catalog.hub_reachable():
        raise ModelLoadError(offline_message(source.spec))
    return _download(source.spec, max_params)


def _load(source: ModelSource, max_params: int, dtype: torch.dtype) -> HookedLM:
    spec, is_bundled = source.spec, source.kind == "bundled"
    folder = _folder_for(source, max_params)
    config = _read_config(folder, spec)
    _check_config(config, spec, max_params)
    hooked_attention.register()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, config=config, dtype=dtype, trust_remote_code=False, local_files_only=True,
            attn_implementation=adapter_class(config.model_type).attn_implementation,
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except Exception as err:  # any failure reading files (safetensors, tokenizer) becomes a message
        hint = f" {REBUILD_HINT}" if is_bundled else ""
        detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise ModelLoadError(f"Could not read the weights of {shown(spec)}: {detail}.{hint}") from err
    apply_saved_norms(model)  # a lab-trained model without block norms (core.models.norms)
    model.requires_grad_(False)
    name = BUNDLED_NAME if is_bundled else spec
    return HookedLM(model, tokenizer, spec=spec, display_name=name, is_bundled=is_bundled)


def load_model(spec: str | None = None, *, any_folder: bool = True, max_params: int | None = None,
               dtype: torch.dtype = torch.float32) -> HookedLM:
    """Load a model by spec: None or "bundled", a hub id like "gpt2", or a local folder path.

    any_folder=False applies the rule for links (see resolve_spec). Raises ModelLoadError, and
    nothing else, when the model cannot be loaded.
    """
    max_params = max_params if max_params is not None else max_params_budget()
    try:
        return _load(resolve_spec(spec, any_folder=any_folder), max_params, dtype)
    except ModelLoadError:
        raise
    except Exception as err:  # the one place a surprise from a spec becomes a message
        raise ModelLoadError(f"Could not load {shown(str(spec))} ({type(err).__name__}). Pick the "
                             "bundled model or another one.") from err


def wrap(model, tokenizer, *, spec: str = "in-memory", name: str | None = None,
         is_bundled: bool = False) -> HookedLM:
    """Wrap a transformers model already in memory (e.g. one just built or trained) as a HookedLM."""
    hooked_attention.register()
    model.set_attn_implementation(adapter_class(model.config.model_type).attn_implementation)
    return HookedLM(model, tokenizer, spec=spec, display_name=name, is_bundled=is_bundled)
