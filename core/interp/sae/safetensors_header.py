"""Reading a safetensors file that may be hostile: the header first, the weights only after checks.

A safetensors file is 8 bytes (the header's length, little-endian), a JSON header, then the raw
tensor bytes. The header says, for every tensor, its dtype ("F32", "F16", "BF16", "F8_E4M3", ...),
its shape and the byte range [start, end) of its data. So everything that decides how much memory a
file will cost (shapes, dtypes) can be checked before a single tensor is built, and a tensor is
built only from the exact byte range the header promised, after that range was checked against
the file. Every problem is a ValueError in words a learner can act on.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import torch

MAX_HEADER_BYTES = 1_000_000  # an SAE's header is a few hundred bytes; a larger claim is not one
FLOAT_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
                "F64": (torch.float64, 8)}  # the dtypes an SAE's weights may be stored in
DTYPE_WORDS = {"F8_E4M3": "8-bit float (F8_E4M3)", "F8_E5M2": "8-bit float (F8_E5M2)",
               "BOOL": "booleans", "I8": "8-bit integers", "U8": "8-bit integers",
               "I16": "16-bit integers", "I32": "32-bit integers", "I64": "64-bit integers"}


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # the header's name for it: "F32", "BF16", ...
    shape: tuple[int, ...]
    start: int  # byte range in the data section
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict  # the "__metadata__" object (string -> string in a well-formed file)
    data: memoryview  # the data section the byte ranges point into


def parse_json(text: str | bytes, what: str):
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"Not an SAE file from this lab: {what} is not readable JSON.") from err


def read_header(raw: bytes) -> Header:
    """The checked header of a safetensors file (no tensor is built)."""
    if len(raw) < 8:
        raise ValueError("Not a safetensors file: it is too short.")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise ValueError("Not a safetensors file: its header is cut short.")
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"Not an SAE file: its header claims {n:,} bytes (an SAE's has a few hundred).")
    header = parse_json(bytes(raw[8:8 + n]), "its header")
    if not isinstance(header, dict):
        raise ValueError("Not a safetensors file: its header is not a JSON object.")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ValueError("Not a safetensors file: its __metadata__ is not a JSON object.")
    data = memoryview(raw)[8 + n:]
    tensors = {str(name): _tensor_info(str(name), entry, len(data)) for name, entry in header.items()}
    return Header(tensors, metadata, data)


def _tensor_info(name: str, entry, data_len: int) -> TensorInfo:
    def bad(why: str) -> ValueError:
        return ValueError(f"Not a readable safetensors file: the entry for {name[:60]!r} {why}.")

    if not isinstance(entry, dict):
        raise bad("is not a JSON object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        raise bad("has no dtype")
    if not isinstance(shape, list) or not all(_count(d) for d in shape) or len(shape) > 8:
        raise bad("has no valid shape")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(o) for o in offsets):
        raise bad("has no valid data_offsets")
    start, end = offsets
    if not start <= end:
        raise bad("has a negative byte range")
    if end > data_len:
        raise ValueError(f"The file is cut short: {name[:60]!r} needs bytes up to {end:,} of the data, "
                         f"and the file holds {data_len:,}.")
    info = TensorInfo(dtype, tuple(shape), start, end)
    if dtype in FLOAT_DTYPES and end - start != info.numel * FLOAT_DTYPES[dtype][1]:
        raise bad(f"says shape {info.shape} in {dtype}, which does not match its {end - start:,} bytes")
    return info


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_float(name: str, info: TensorInfo) -> None:
    """A clear refusal for weights stored in a dtype that is not a float this lab can compute with."""
    if info.dtype not in FLOAT_DTYPES:
        words = DTYPE_WORDS.get(info.dtype, repr(info.dtype[:20]))
        raise ValueError(f"The SAE's {name} is stored as {words}; this lab reads SAEs stored as "
                         f"{', '.join(FLOAT_DTYPES)} (32-, 16- or 64-bit floats).")


def load_float32(header: Header, name: str) -> torch.Tensor:
    """One tensor as float32, built from its checked byte range (check_float first)."""
    info = header.tensors[name]
    check_float(name, info)
    dtype, _ = FLOAT_DTYPES[info.dtype]
    chunk = bytearray(header.data[info.start:info.end])  # a writable copy of exactly these bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty buffer warns; the shape check below still holds
        flat = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
    tensor = flat.reshape(info.shape).float()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"The SAE's {name} contains NaN or infinite values.")
    return tensor
