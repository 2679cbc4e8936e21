"""The SAE's files: SAELens's folder (zipped for the browser) and the lab's single file, read defensively.

SAELens saves an SAE as a folder of two files, and so does `SAE.save` here:
- cfg.json: {"d_in": 128, "d_sae": 512, "architecture": "standard" (ReLU) or "topk" (with "k" and
  "rescale_acts_by_decoder_norm"), "apply_b_dec_to_input": true, "normalize_activations": "none",
  "reshape_activations": "none", "dtype": "float32", "device": "cpu", "metadata": {"sae_lens_version":
  "6.0.0", "hook_name": "blocks.1.hook_resid_post", "model_name": "bundled", ...}};
- sae_weights.safetensors: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in].
SAELens's `SAE.load_from_disk(folder)` loads what `SAE.save` writes, and `SAE.load(folder)` here loads
what SAELens saved. The page downloads the folder as a .zip and takes such a zip back. The weights
file written here also carries the config in its own header ("sae_config"), so a lone .safetensors
from this lab (the lab's older single-file format) still says what it is.

What a SAELens config means here. "standard" is ReLU (+ L1 in training) and "topk" is TopK; other
architectures (JumpReLU, gated, ...) are refused with a message. `apply_b_dec_to_input: false` (the
encoder reads x, not x - b_dec) is rewritten exactly: b_enc + b_dec @ W_enc. SAELens's TopK with
`rescale_acts_by_decoder_norm` picks the k largest pre-activation x decoder row length, which is
this lab's rule; without it, it picks by pre-activation alone, which is the same rule only when the
rows have unit length (SAELens saves its trained TopK SAEs so; others are refused once the rows
are read). On loading, decoder rows are folded to unit length
(outputs unchanged), as every SAE in the lab has them. "expected_average_only_in" changes nothing
at inference (as in SAELens); run-time normalisations (layer norm, rescaling, whitening) are refused.

Everything read here is untrusted: the header, then the config, then the shapes against the config
and the sizes against the limits are checked before a single weight is allocated, and a zip's
members are read only up to the sizes they declare. Every problem is a ValueError a learner can act on.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.interp.sae.config import SAEConfig
from core.interp.sae.safetensors_header import Header, check_float, parse_json, read_header

WEIGHTS_FILE, CONFIG_FILE = "sae_weights.safetensors", "cfg.json"  # SAELens's folder layout
LENS_FORMAT_VERSION = "6.0.0"  # the SAELens config format written here (its 6.x layout)
LAB_CONFIG_KEY = "sae_config"  # the config inside a lab .safetensors header
NOTE_PREFIX = "lab_"  # notes (string -> string) travel in cfg.json's metadata under this prefix
MAX_EXPANSION = 32  # d_sae at most this many times d_in: the largest dictionary this lab analyses
MAX_D_IN = 65_536
MAX_CONFIG_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = 1_000_000_000  # a zip member claiming more is refused before it is read
MAX_ZIP_MEMBERS = 64
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError,
              struct.error, ValueError, UnicodeDecodeError)

PARAMETER_SHAPES = {  # parameter -> its shape in terms of the config
    "W_dec": ("d_sae", "d_in"), "W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "b_dec": ("d_in",),
}
FIELD_TYPES = {"d_in": int, "d_sae": int, "architecture": str, "k": int, "hook_name": str,
               "model_spec": str}
LENS_ARCHITECTURES = {"standard": "relu", "topk": "topk"}
LENS_NORMALIZATIONS = ("none", "expected_average_only_in")  # identity at inference


@dataclass(frozen=True)
class SAEFile:
    """An SAE file whose header and config passed every check; its weights are not built yet
    (SAE.from_file builds them)."""

    config: SAEConfig
    header: Header
    notes: dict[str, str]
    layout: str  # "SAELens folder" or "lab file"
    b_dec_in_encoder: bool = True  # False: the encoder reads x, not x - b_dec (SAELens option)
    fold_decoder_norms: bool = False  # bring decoder rows to unit length on building (SAELens files)
    unit_rows_required: bool = False  # TopK ranking by pre-activation alone: only unit rows agree

    @property
    def parameter_bytes(self) -> int:
        """The float32 weights it will take once built."""
        d_in, d_sae = self.config.d_in, self.config.d_sae
        return 4 * (2 * d_in * d_sae + d_in + d_sae)


# -- opening ----------------------------------------------------------------------------------------
def open_sae_bytes(raw: bytes) -> SAEFile:
    """A zipped SAELens folder (what the page downloads) or a lab .safetensors, checked."""
    if raw[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        config_text, weights = read_zip(raw)
        return checked_file(parse_json(config_text, f"its {CONFIG_FILE}"), weights)
    return checked_file(None, raw)


def open_sae_folder(folder: str | Path) -> SAEFile:
    """A folder SAELens (or SAE.save) wrote: cfg.json beside sae_weights.safetensors."""
    folder = Path(folder)
    try:
        if (folder / CONFIG_FILE).stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{CONFIG_FILE} is over {MAX_CONFIG_BYTES:,} bytes: not an SAE config.")
        config = parse_json((folder / CONFIG_FILE).read_bytes(), f"its {CONFIG_FILE}")
        raw = (folder / WEIGHTS_FILE).read_bytes()
    except OSError as err:
        raise ValueError(f"Could not read the SAE in {folder}: {err.strerror or err}.") from err
    return checked_file(config, raw)


def read_zip(raw: bytes) -> tuple[bytes, bytes]:
    """(cfg.json, sae_weights.safetensors) from a zipped SAE folder, each read only up to the size
    its entry declares (so a zip bomb costs no more than it admits to)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise ValueError(f"the zip holds {len(members):,} files; an SAE folder holds two")
            found = {}
            for name, limit in ((CONFIG_FILE, MAX_CONFIG_BYTES), (WEIGHTS_FILE, MAX_WEIGHTS_BYTES)):
                matches = [m for m in members if PurePosixPath(m.filename).name == name and not m.is_dir()]
                if len(matches) != 1:
                    raise ValueError(f"a zipped SAE holds exactly one {name} (a folder SAELens saved); "
                                     f"this one holds {len(matches)}")
                if matches[0].file_size > limit:
                    raise ValueError(f"its {name} claims {matches[0].file_size:,} bytes")
                found[name] = archive.read(matches[0])
    except ZIP_ERRORS as err:
        raise ValueError(f"Not a readable SAE zip: {err}.") from err
    return found[CONFIG_FILE], found[WEIGHTS_FILE]


# -- checking ---------------------------------------------------------------------------------------
def checked_file(lens_config: dict | None, raw: bytes) -> SAEFile:
    """Check a SAELens config (or, without one, the lab config in the weights' header) against the
    weights' header: every parameter present, stored as floats, in the shapes the config gives, and
    the sizes within the limits. Nothing is allocated."""
    header = read_header(raw)
    notes = {k: v for k, v in header.metadata.items()
             if k != LAB_CONFIG_KEY and isinstance(k, str) and isinstance(v, str)}
    extra: dict = {}
    if lens_config is not None:
        config, lens_notes, extra = from_lens_config(lens_config)
        notes, layout = {**notes, **lens_notes}, "SAELens folder"
    else:
        text = header.metadata.get(LAB_CONFIG_KEY)
        if text is None:
            raise ValueError("Not an SAE file from this lab: its config is missing (an SAE that "
                             f"SAELens saved needs its {CONFIG_FILE}: upload the folder as a .zip).")
        if not isinstance(text, str):
            raise ValueError("The SAE config in the file's metadata is not a JSON string.")
        config, layout = checked_config(parse_json(text, "its SAE config")), "lab file"
    check_shapes(config, header)
    check_size(config["d_in"], config["d_sae"])
    return SAEFile(SAEConfig(**config), header, notes, layout, **extra)  # SAEConfig checks arch and k


def check_shapes(config: dict, header: Header) -> None:
    """Every parameter present, stored as floats, of exactly the shape the config's sizes give."""
    missing = sorted(set(PARAMETER_SHAPES) - set(header.tensors))
    if missing:
        raise ValueError(f"The SAE file lacks {', '.join(missing)}.")
    for name, dims in PARAMETER_SHAPES.items():
        info = header.tensors[name]
        want = tuple(config[d] for d in dims)
        if info.shape != want:
            raise ValueError(f"The SAE's weights do not fit its config: {name} has shape {info.shape}, "
                             f"but d_in {config['d_in']} and d_sae {config['d_sae']} need {want}.")
        check_float(name, info)


def check_size(d_in: int, d_sae: int) -> None:
    """The dictionary-size cap: no wider than MAX_EXPANSION x d_in (what the training form offers)."""
    if d_in > MAX_D_IN:
        raise ValueError(f"The SAE reads vectors of width {d_in:,}; this lab's models are at most "
                         f"{MAX_D_IN:,} wide.")
    if d_sae > MAX_EXPANSION * d_in:
        raise ValueError(f"The SAE has {d_sae:,} features for width {d_in}: more than {MAX_EXPANSION} x "
                         f"d_in ({MAX_EXPANSION * d_in:,}), the largest dictionary this lab analyses.")


def checked_config(meta) -> dict:
    """The fields of an SAEConfig from untrusted JSON (the lab format): every field of the right
    type, sizes positive."""
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


# -- SAELens's config -------------------------------------------------------------------------------
def from_lens_config(cfg) -> tuple[dict, dict[str, str], dict]:
    """(SAEConfig fields, notes, how to build) from a SAELens cfg.json (6.x, or the older flat
    layout with hook_point / activation_fn)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{CONFIG_FILE} is not a JSON object.")
    metadata = cfg.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{CONFIG_FILE}'s metadata is not a JSON object.")

    def field(key: str, kind: type, default=None, where: dict = cfg):
        value = where.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{CONFIG_FILE}'s {key} should be {kind.__name__}, not {value!r:.40}.")
        return value

    architecture = field("architecture", str, "standard")
    k = 0
    if cfg.get("activation_fn") == "topk" and isinstance(cfg.get("activation_fn_kwargs"), dict):
        architecture, k = "topk", field("k", int, None, cfg["activation_fn_kwargs"])  # before 6.0
    if architecture not in LENS_ARCHITECTURES:
        raise ValueError(f"A SAELens {architecture[:40]!r} SAE: this lab reads 'standard' (ReLU) and "
                         f"'topk' SAEs.")
    d_in, d_sae = field("d_in", int), field("d_sae", int)
    if d_in < 1 or d_sae < 1:
        raise ValueError(f"{CONFIG_FILE} has impossible sizes: d_in {d_in}, d_sae {d_sae}.")
    if architecture == "topk" and not k:
        k = field("k", int)
    normalize = cfg.get("normalize_activations", "none")
    normalize = {False: "none", True: "expected_average_only_in", None: "none"}.get(normalize, normalize) \
        if isinstance(normalize, bool | None) else normalize
    if normalize not in LENS_NORMALIZATIONS:
        raise ValueError(f"This SAE normalises its input at run time ({str(normalize)[:40]!r}); this lab "
                         f"reads SAEs with normalize_activations 'none'.")
    if field("reshape_activations", str, "none") != "none":
        raise ValueError("This SAE reads attention heads (reshape_activations 'hook_z'); this lab's SAEs "
                         "read one vector per token.")
    if metadata.get("hook_head_index", cfg.get("hook_head_index")) is not None:
        raise ValueError("This SAE reads a single attention head; this lab's SAEs read one vector per token.")
    hook = metadata.get("hook_name", cfg.get("hook_name", cfg.get("hook_point", "")))
    model = metadata.get("model_name", cfg.get("model_name", ""))
    for key, value in (("hook_name", hook), ("model_name", model)):
        if not isinstance(value, str) or len(value) > 1000:
            raise ValueError(f"{CONFIG_FILE}'s {key} should be a (short) string, not {value!r:.40}.")
    if architecture == "topk":
        if not 0 < k <= d_sae:
            raise ValueError(f"TopK needs 0 < k <= d_sae, got k={k}, d_sae={d_sae}")
    config = {"d_in": d_in, "d_sae": d_sae, "architecture": LENS_ARCHITECTURES[architecture],
              "k": k if architecture == "topk" else 0, "hook_name": hook, "model_spec": model}
    notes = {key: value for key, value in metadata.items()
             if isinstance(key, str) and key.startswith(NOTE_PREFIX) and isinstance(value, str)}
    by_pre_alone = architecture == "topk" and not field("rescale_acts_by_decoder_norm", bool, False)
    extra = {"b_dec_in_encoder": field("apply_b_dec_to_input", bool, True), "fold_decoder_norms": True,
             "unit_rows_required": by_pre_alone}
    return config, notes, extra


def lens_config(config: dict, notes: dict[str, str] | None = None) -> dict:
    """The cfg.json SAELens reads for an SAE with these SAEConfig fields (notes go in its metadata,
    each key starting with NOTE_PREFIX)."""
    bad = [key for key in (notes or {}) if not key.startswith(NOTE_PREFIX)]
    if bad:
        raise ValueError(f"Note names start with {NOTE_PREFIX!r}: {', '.join(bad)}")
    out = {"d_in": config["d_in"], "d_sae": config["d_sae"], "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": LENS_FORMAT_VERSION, "sae_lens_training_version": None,
                        "hook_name": config["hook_name"], "model_name": config["model_spec"],
                        **(notes or {})}}
    if config["architecture"] == "topk":  # ranking by pre-activation x row length, as sparsify does
        return {**out, "k": config["k"], "rescale_acts_by_decoder_norm": True, "architecture": "topk"}
    return {**out, "architecture": "standard"}


def config_metadata(config: dict) -> dict[str, str]:
    """The safetensors metadata entry that stores a config (a dict of an SAEConfig)."""
    return {LAB_CONFIG_KEY: json.dumps(config)}


def zip_folder(folder_name: str, files: dict[str, bytes]) -> bytes:
    """A zip holding folder_name/<file> for each file (what unzips to a folder SAELens loads)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder_name}/{name}", data)
    return buffer.getvalue()


def read_notes(raw: bytes) -> dict[str, str]:
    """The string notes stored with an SAE file (zip or .safetensors) beside its config."""
    return open_sae_bytes(raw).notes
