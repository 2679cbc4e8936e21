"""Saving and loading adapters: a LoRA or IA3 adapter is a small folder next to a base model.

`save_pretrained` writes adapter_config.json (method, rank, alpha, which modules) and
adapter_model.safetensors (only the adapter's own weights: A and B, or the IA3 scales), so an
adapter for a 1M-parameter model is a few tens of kilobytes. Loading it onto the same base model
gives back the tuned model exactly; onto a different base it fails, and we say why.

Only safetensors files are read (never pickled .bin files, which can run code), and zip archives
are checked before extraction: no absolute paths or "..", and a size limit.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from peft import PeftModel

from core.models.loading import wrap

MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


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


def _adapter_folder(root: Path) -> Path:
    """The folder holding adapter_config.json (the root, or one folder down in a zip)."""
    found = sorted(root.rglob(CONFIG), key=lambda p: len(p.parts))
    if not found:
        raise AdapterLoadError(f"No {CONFIG} found: is this a PEFT adapter saved with save_pretrained?")
    folder = found[0].parent
    if not (folder / WEIGHTS).is_file():
        raise AdapterLoadError(f"{CONFIG} is there but {WEIGHTS} is not (only safetensors are read).")
    return folder


def describe(folder: Path) -> dict:
    """The adapter's config as a dict (method, rank, target modules, base model)."""
    return json.loads((folder / CONFIG).read_text())


def load_adapter(lm, source: bytes | str | Path):
    """(tuned HookedLM, PeftModel, config dict) from a zip's bytes or a folder, onto a copy of lm."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(source, bytes):
            _safe_extract(source, Path(tmp))
            folder = _adapter_folder(Path(tmp))
        else:
            root = Path(source).expanduser()
            if not root.is_dir():
                raise AdapterLoadError(f"{str(source)!r} is not a folder on this machine.")
            folder = _adapter_folder(root)
        config = describe(folder)
        if config.get("peft_type") not in ("LORA", "IA3"):
            raise AdapterLoadError(f"This page reads LoRA and IA3 adapters, not {config.get('peft_type')!r}.")
        try:
            peft_model = PeftModel.from_pretrained(lm.detached_model(), str(folder))
        except (ValueError, RuntimeError, KeyError) as err:
            base = config.get("base_model_name_or_path") or "another model"
            raise AdapterLoadError(
                f"This adapter does not fit {lm.name}: it was saved for {base!r} ({err})."
            ) from err
    tuned = wrap(peft_model.base_model.model, lm.tokenizer, spec=lm.spec,
                 name=f"{lm.name} + loaded {config['peft_type']} adapter")
    return tuned, peft_model, config
