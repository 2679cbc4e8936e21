"""Saving and loading adapters: a LoRA or IA3 adapter is a small folder next to a base model.

`save_pretrained` writes adapter_config.json (method, rank, alpha, which modules) and
adapter_model.safetensors (only the adapter's own weights: A and B, or the IA3 scales), so an
adapter for a 1M-parameter model is a few tens of kilobytes. Loading it onto the same base model
gives back the tuned model exactly; onto a different base it fails, and we say why.

Only safetensors files are read (never pickled .bin files, which can run code), and zip archives
are checked before extraction: no absolute paths or "..", and a size limit. A folder is read only
under the system temp folder or this repository, unless the server sets LAB_ALLOW_LOCAL_ADAPTERS=1
(the folder name comes from a browser). Whatever is wrong with the files (bad JSON, a config PEFT
rejects, weights of the wrong shape, a damaged safetensors file), the error is an AdapterLoadError
that says so. The loaded copy gets a spec of its own and the base model's `is_bundled`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors import SafetensorError, safe_open

from core.interp.finetune.methods import COPY_BUDGET_BYTES, MemoryBudgetError, check_copy_budget, copy_spec
from core.models.loading import wrap

MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
ALLOW_ANY_FOLDER_ENV = "LAB_ALLOW_LOCAL_ADAPTERS"  # "1": read adapter folders anywhere on the server
REPO_DIR = Path(__file__).resolve().parents[3]


class AdapterLoadError(ValueError):
    """An adapter could not be loaded; the message says why in words a learner can act on."""


def adapter_zip(peft_model, base_spec: str) -> bytes:
    """The adapter saved with PEFT's save_pretrained, as the bytes of a zip archive."""
    for config in peft_model.peft_config.values():
        config.base_model_name_or_path = base_spec
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        # embeddings are never adapted here; "auto" would look the base model up on the hub
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(tmp).as_posix())
    return buffer.getvalue()


def _safe_extract(data: bytes, into: Path) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise AdapterLoadError("That file is not a zip archive.") from err
    with zf:
        total = 0
        for info in zf.infolist():
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts:
                raise AdapterLoadError(f"The zip holds an unsafe path: {info.filename!r}.")
            total += info.file_size
            if total > MAX_UNZIPPED_BYTES:
                raise AdapterLoadError("The zip is too large to be an adapter for this app.")
        zf.extractall(into)


def allowed_folder_roots() -> tuple[Path, ...] | None:
    """Folders under which adapter folders may be read; None: anywhere (LAB_ALLOW_LOCAL_ADAPTERS=1)."""
    if os.environ.get(ALLOW_ANY_FOLDER_ENV) == "1":
        return None
    return Path(tempfile.gettempdir()).resolve(), REPO_DIR


def _checked_folder(source: str | Path) -> Path:
    """The folder named by source, resolved (links followed), if folders there may be read."""
    root = Path(source).expanduser().resolve()
    roots = allowed_folder_roots()
    if roots is not None and not any(root.is_relative_to(r) for r in roots):
        raise AdapterLoadError(
            f"For safety, this app reads adapter folders only under {' or '.join(map(str, roots))} "
            f"(the server can allow any folder with {ALLOW_ANY_FOLDER_ENV}=1). Upload the adapter as a "
            ".zip instead.")
    if not root.is_dir():
        raise AdapterLoadError(f"{str(source)!r} is not a folder on this machine.")
    return root


def _adapter_folder(root: Path) -> Path:
    """The folder holding adapter_config.json: the root, or one folder down (as in some zips)."""
    found = [p for p in (root / CONFIG, *sorted(root.glob(f"*/{CONFIG}"))) if p.is_file()]
    if not found:
        raise AdapterLoadError(f"No {CONFIG} found: is this a PEFT adapter saved with save_pretrained?")
    folder = found[0].parent
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise AdapterLoadError(f"{CONFIG} is there but {WEIGHTS} is not (only safetensors are read).")
    if weights.stat().st_size > MAX_UNZIPPED_BYTES:
        raise AdapterLoadError(f"{WEIGHTS} is too large to be an adapter for this app.")
    return folder


def describe(folder: Path) -> dict:
    """The adapter's config as a dict (method, rank, target modules, base model)."""
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AdapterLoadError(f"{CONFIG} is not a readable JSON file ({err}).") from err
    if not isinstance(config, dict):
        raise AdapterLoadError(f"{CONFIG} must hold a JSON object (settings by name), "
                               f"not a {type(config).__name__}.")
    return config


def _short(err: Exception, limit: int = 300) -> str:
    """An exception's message cut to `limit` characters (PEFT lists every mismatched tensor)."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _weight_names(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def load_adapter(lm, source: bytes | str | Path, max_bytes: float | None = COPY_BUDGET_BYTES):
    """(tuned HookedLM, PeftModel, config dict) from a zip's bytes or a folder, onto a copy of lm.

    Every failure is an AdapterLoadError with a message for the learner, raised before the model
    is copied when the copy would need more than max_bytes (None: no limit)."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(source, bytes):
            _safe_extract(source, Path(tmp))
            folder = _adapter_folder(Path(tmp))
        else:
            folder = _adapter_folder(_checked_folder(source))
        config = describe(folder)
        kind = config.get("peft_type")
        if kind not in ("LORA", "IA3"):
            raise AdapterLoadError(f"This page reads LoRA and IA3 adapters, not {kind!r}.")
        base = config.get("base_model_name_or_path") or "another model"
        try:
            check_copy_budget(lm, kind.lower(), max_bytes)
        except MemoryBudgetError as err:
            raise AdapterLoadError(str(err)) from err
        try:
            peft_model = PeftModel.from_pretrained(lm.detached_model(), str(folder))
            missing = set(get_peft_model_state_dict(peft_model)) - _weight_names(folder / WEIGHTS)
        except (ValueError, RuntimeError, KeyError) as err:  # PEFT: wrong modules, wrong shapes
            raise AdapterLoadError(
                f"This adapter does not fit {lm.name} (it was saved for {base!r}), or its config is not "
                f"one PEFT accepts: {_short(err)}") from err
        except (TypeError, AttributeError, OSError, SafetensorError) as err:  # bad values, bad file
            raise AdapterLoadError(
                f"The adapter's files are damaged or not as PEFT's save_pretrained writes them: {_short(err)}"
            ) from err
        if missing:
            raise AdapterLoadError(
                f"{WEIGHTS} lacks {len(missing)} of the adapter's weights (e.g. {min(missing)!r}): it "
                f"does not fit {lm.name}, or the file is incomplete.")
    tuned = wrap(peft_model.base_model.model, lm.tokenizer, spec=copy_spec(lm, f"loaded-{kind.lower()}"),
                 name=f"{lm.name} + loaded {kind} adapter", is_bundled=lm.is_bundled)
    return tuned, peft_model, config
