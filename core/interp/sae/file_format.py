"""The SAE file format, read defensively: a safetensors file may come from an upload.

A file written by SAE.to_bytes() or SAE.save() is plain safetensors. Its JSON header holds, under
"__metadata__", the SAE's config as a JSON string ("sae_config") and any string notes beside it
(the corpus the page measured it on, for instance). Everything read here is untrusted: types,
sizes and shapes are checked before a single weight is allocated, and every problem is a
ValueError whose message a learner can act on.
"""

from __future__ import annotations

import json

import torch


def config_metadata(config: dict) -> dict[str, str]:
    """The safetensors metadata entry that stores a config (a dict of an SAEConfig)."""
    return {"sae_config": json.dumps(config)}


def read_notes(raw: bytes) -> dict[str, str]:
    """The string notes that to_bytes(notes=...) stored beside the config (ValueError if the file
    is not safetensors)."""
    return {key: value for key, value in _header_metadata(raw).items()
            if key != "sae_config" and isinstance(key, str) and isinstance(value, str)}


def stored_config(raw: bytes) -> dict | None:
    """The config stored in a safetensors file's header (not yet checked), or None if absent."""
    text = _header_metadata(raw).get("sae_config")
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError("The SAE config in the file's metadata is not a JSON string.")
    return parse_json(text, "its SAE config")


def _header_metadata(raw: bytes) -> dict:
    """The __metadata__ object of a safetensors file's JSON header (empty if it has none)."""
    if len(raw) < 8:
        raise ValueError("Not a safetensors file: it is too short.")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise ValueError("Not a safetensors file: its header is cut short.")
    header = parse_json(raw[8:8 + n], "its header")
    if not isinstance(header, dict):
        raise ValueError("Not a safetensors file: its header is not a JSON object.")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ValueError("Not a safetensors file: its __metadata__ is not a JSON object.")
    return metadata


def parse_json(text: str | bytes, what: str):
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"Not an SAE file from this lab: {what} is not readable JSON.") from err


FIELD_TYPES = {"d_in": int, "d_sae": int, "architecture": str, "k": int, "hook_name": str,
                "model_spec": str}
PARAMETER_SHAPES = {  # parameter -> its shape in terms of the config
    "W_dec": ("d_sae", "d_in"), "W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "b_dec": ("d_in",),
}


def checked_config(meta) -> dict:
    """The fields of an SAEConfig from untrusted JSON: every field of the right type, sizes positive."""
    if not isinstance(meta, dict):
        raise ValueError("The SAE config is not a JSON object.")
    unknown = sorted(str(key) for key in set(meta) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"The SAE config is not one this lab knows: unknown fields {', '.join(unknown)}.")
    missing = [key for key in ("d_in", "d_sae") if key not in meta]
    if missing:
        raise ValueError(f"The SAE config lacks {', '.join(missing)}.")
    for key, value in meta.items():
        kind = FIELD_TYPES[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"The SAE config's {key} should be {kind.__name__}, not {value!r:.40}.")
    if meta["d_in"] < 1 or meta["d_sae"] < 1 or meta.get("k", 0) < 0:
        raise ValueError(f"The SAE config has impossible sizes: d_in {meta['d_in']}, d_sae "
                         f"{meta['d_sae']}, k {meta.get('k', 0)}.")
    return meta


def check_tensors(sizes: dict, tensors: dict[str, torch.Tensor]) -> None:
    """The file holds every parameter, as finite floats of exactly the shapes that the config's
    sizes (d_in, d_sae) give."""
    missing = sorted(set(PARAMETER_SHAPES) - set(tensors))
    if missing:
        raise ValueError(f"The SAE file lacks {', '.join(missing)}.")
    for name, dims in PARAMETER_SHAPES.items():
        want, got = tuple(sizes[d] for d in dims), tuple(tensors[name].shape)
        if got != want:
            raise ValueError(f"The SAE's weights do not fit its config: {name} has shape {got}, "
                             f"but d_in {sizes['d_in']} and d_sae {sizes['d_sae']} need {want}.")
        if not tensors[name].is_floating_point():
            raise ValueError(f"The SAE's {name} holds {tensors[name].dtype}, not floats.")
        if not torch.isfinite(tensors[name]).all():
            raise ValueError(f"The SAE's {name} contains NaN or infinite values.")
