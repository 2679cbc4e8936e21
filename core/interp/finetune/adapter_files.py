"""Reading an adapter's two files from an upload or a folder, trusting nothing about them.

A PEFT adapter is two files: adapter_config.json (its settings) and adapter_model.safetensors (its
weights). They reach the server as a zip from a browser, or as a folder named in a text box, so:

- zip: only those two members are read, never the whole archive. Their sizes are read from the
  archive's table of contents and checked before a byte is decompressed (a 200 KB zip can hold
  200 MB of zeros), reads stop at the declared size, and a damaged archive (a bad CRC, broken
  deflate data, an unknown compression method, a password) is a message, not a crash.
- folder: read only under the allowed roots (the system temp folder and this repository, or
  anywhere if the server sets LAB_ALLOW_LOCAL_ADAPTERS=1). Whatever goes wrong with a folder (outside
  the roots, missing, not a folder, no adapter in it, unreadable) gets one neutral message, so the
  box cannot be used to learn which paths exist on the server.
- only safetensors: a pickled adapter_model.bin can run code when it is loaded.
"""

from __future__ import annotations

import io
import lzma
import os
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CONFIG, WEIGHTS, PICKLED = "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"
MAX_CONFIG_BYTES = 1_000_000  # a PEFT config is a few kilobytes
MAX_MEMBERS = 1_000  # an adapter zip holds two or three files
MAX_NAME_CHARS = 1_024  # a folder name typed in the box
MAX_PART_CHARS = 255  # one path component (the usual file-system limit)
ALLOW_ANY_FOLDER_ENV = "LAB_ALLOW_LOCAL_ADAPTERS"  # "1": read adapter folders anywhere on the server
REPO_DIR = Path(__file__).resolve().parents[3]
# What reading an untrusted archive can raise: all mean "damaged".
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError,
            OSError, ValueError, KeyError, IndexError, OverflowError, struct.error)


class AdapterLoadError(ValueError):
    """An adapter could not be loaded; the message says why in words a learner can act on."""


@dataclass(frozen=True)
class AdapterFiles:
    config: bytes  # adapter_config.json
    weights: bytes  # adapter_model.safetensors


def allowed_folder_roots() -> tuple[Path, ...] | None:
    """Folders under which adapter folders may be read; None: anywhere (LAB_ALLOW_LOCAL_ADAPTERS=1)."""
    if os.environ.get(ALLOW_ANY_FOLDER_ENV) == "1":
        return None
    return Path(tempfile.gettempdir()).resolve(), REPO_DIR


def folder_message() -> str:
    """The one message for every folder that cannot be read, whatever the reason."""
    roots = allowed_folder_roots()
    where = ("" if roots is None else
             f"This app reads adapter folders only under {' or '.join(map(str, roots))} (the server can "
             f"allow any folder with {ALLOW_ANY_FOLDER_ENV}=1). ")
    return (f"No adapter could be read from that folder. {where}The folder must hold {CONFIG} and {WEIGHTS} "
            "(only safetensors files are read). Uploading the adapter as a .zip always works.")


def _too_big(what: str, size: int, limit: int) -> AdapterLoadError:
    return AdapterLoadError(f"{what} would be {size / 1e6:,.1f} MB unpacked, more than an adapter for this "
                            f"model can be ({limit / 1e6:,.1f} MB).")


def read_zip(data: bytes, max_weights_bytes: int) -> AdapterFiles:
    """adapter_config.json and adapter_model.safetensors from a zip's bytes (at the top, or one folder
    down), sizes checked from the archive's table of contents before anything is decompressed."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except _DAMAGED as err:
        raise AdapterLoadError("That file is not a zip archive, or it is damaged.") from err
    with zf:
        if len(infos) > MAX_MEMBERS:
            raise AdapterLoadError(f"The zip holds {len(infos):,} files; an adapter is two "
                                   f"({CONFIG} and {WEIGHTS}).")
        members = {}
        for info in infos:
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts:
                raise AdapterLoadError(f"The zip holds an unsafe path: {info.filename[:100]!r}.")
            members.setdefault(path.as_posix(), info)
        configs = sorted((p for p in members if PurePosixPath(p).name == CONFIG and p.count("/") <= 1),
                         key=lambda p: (p.count("/"), p))
        if not configs:
            raise AdapterLoadError(f"No {CONFIG} found in the zip: is this a PEFT adapter saved with "
                                   "save_pretrained?")
        folder = PurePosixPath(configs[0]).parent
        weights_name = (folder / WEIGHTS).as_posix()
        if weights_name not in members:
            only = " (a pickled .bin file is never read)" if (folder / PICKLED).as_posix() in members else ""
            raise AdapterLoadError(f"{CONFIG} is there but {WEIGHTS} is not: only safetensors are "
                                   f"read{only}.")
        config_info, weights_info = members[configs[0]], members[weights_name]
        if config_info.file_size > MAX_CONFIG_BYTES:
            raise _too_big(CONFIG, config_info.file_size, MAX_CONFIG_BYTES)
        if weights_info.file_size > max_weights_bytes:
            raise _too_big(WEIGHTS, weights_info.file_size, max_weights_bytes)
        try:
            return AdapterFiles(_read_member(zf, config_info), _read_member(zf, weights_info))
        except _DAMAGED as err:
            raise AdapterLoadError(f"The zip is damaged: its files cannot be unpacked ({type(err).__name__}: "
                                   f"{str(err)[:120]}).") from err


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with zf.open(info) as f:  # stops at the declared size; the CRC is checked at the end
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename}: size differs from the archive's table")
    return data


def _bad_name(source: str) -> str | None:
    """What is wrong with a typed folder name on its face (no file system call), or None."""
    if "\x00" in source:
        return "That folder name holds a NUL character, which no file name can contain."
    if len(source) > MAX_NAME_CHARS or any(len(part) > MAX_PART_CHARS for part in source.split("/")):
        return (f"That folder name is too long ({len(source):,} characters): a name may have at most "
                f"{MAX_NAME_CHARS:,} characters, and {MAX_PART_CHARS} between two slashes.")
    return None


def _inside(path: Path, roots: tuple[Path, ...] | None) -> bool:
    return roots is None or any(path.is_relative_to(r) for r in roots)


def _read_file(path: Path, roots, limit: int) -> bytes:
    real = path.resolve()  # a link inside the folder must not lead out of the roots
    if not _inside(real, roots) or not real.is_file() or real.stat().st_size > limit:
        raise FileNotFoundError(path)
    with open(real, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileNotFoundError(path)
    return data


def read_folder(source: str, max_weights_bytes: int) -> AdapterFiles:
    """The two files from a folder on the server (or one folder down), only under the allowed roots;
    one neutral message for every failure, so existence is never revealed."""
    problem = _bad_name(source)
    if problem:
        raise AdapterLoadError(problem)
    roots = allowed_folder_roots()
    try:
        root = Path(source).expanduser().resolve()
        if not _inside(root, roots) or not root.is_dir():
            raise FileNotFoundError(source)
        candidates = [root / CONFIG]
        with os.scandir(root) as entries:
            for i, entry in enumerate(entries):
                if i >= MAX_MEMBERS:
                    break
                if entry.is_dir():
                    candidates.append(Path(entry.path) / CONFIG)
        config_path = next((p for p in [candidates[0], *sorted(candidates[1:])] if p.is_file()), None)
        if config_path is None:
            raise FileNotFoundError(source)
        config = _read_file(config_path, roots, MAX_CONFIG_BYTES)
        weights = _read_file(config_path.parent / WEIGHTS, roots, max_weights_bytes)
    except (OSError, ValueError, RuntimeError) as err:
        raise AdapterLoadError(folder_message()) from err
    return AdapterFiles(config, weights)
