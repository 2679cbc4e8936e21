"""Sparse autoencoders: rewrite an activation as a sum of a few directions from a large dictionary.

A model's residual stream has far fewer dimensions (d_model) than the things it seems to know about
(names, colours, places, moods...). The superposition hypothesis says it stores many more features
than it has dimensions, as almost-orthogonal directions, each active on only a few tokens. A sparse
autoencoder (SAE) tries to recover those directions from the activations alone:

    feature_acts = ReLU((x - b_dec) @ W_enc + b_enc)     # [batch, d_sae], mostly zeros
    x_hat        = feature_acts @ W_dec + b_dec          # [batch, d_model], the reconstruction

with d_sae = expansion x d_model (2x to 32x here). Row i of W_dec is feature i's direction (kept at
unit length), and feature_acts[:, i] says how much of it each token uses. Training trades two things
off: reconstruct x well (mean squared error) and use few features per token. Two ways to ask for
sparsity:
- ReLU + L1: add l1_coefficient x (sum of feature activations) to the loss. Larger coefficient,
  fewer active features, worse reconstruction.
- TopK: keep only the k largest pre-activations per token and zero the rest (Gao et al., 2024). The
  number of active features (L0) is exactly k at most; no penalty term is needed.

Because the decoder rows have unit norm, an activation value is directly "how far along this
direction": the L1 penalty cannot be dodged by shrinking activations and growing decoder rows.
`fold_W_dec_norm` turns an SAE with any decoder norms into this form without changing what it
computes. Names follow SAELens (W_enc, b_enc, W_dec, b_dec, feature_acts, hook_name), so a learner
can move between the two.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn

from core.interp.sae.config import ARCHITECTURES, SAEConfig
from core.interp.sae.file_format import (
    CONFIG_FILE,
    PARAMETER_SHAPES,
    WEIGHTS_FILE,
    SAEFile,
    config_metadata,
    lens_config,
    open_sae_bytes,
    open_sae_folder,
    zip_folder,
)
from core.interp.sae.safetensors_header import load_float32

__all__ = ["ARCHITECTURES", "SAE", "SAEConfig", "perfect_sae", "sparsify"]
UNIT_ROWS = 1e-3  # decoder rows within this of length 1 count as unit rows (files from elsewhere)
ROUNDING = 1e-6  # rows this close to length 1 are unit rows up to float32 rounding: not folded again


class SAE(nn.Module):
    """The autoencoder of the module docstring. Parameters: W_enc [d_in, d_sae], b_enc [d_sae],
    W_dec [d_sae, d_in] (one unit-norm row per feature), b_dec [d_in]."""

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=gen)  # [d_sae, d_in]
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone().contiguous())  # [d_in, d_sae]: tied at init
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    # -- the forward pass ---------------------------------------------------------------------
    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(feature_acts, hidden_pre), both [..., d_sae], for x [..., d_in]."""
        hidden_pre = (x - self.b_dec) @ self.W_enc + self.b_enc  # [..., d_sae]
        norms = self.W_dec.norm(dim=1) if self.cfg.architecture == "topk" else None
        return sparsify(hidden_pre, self.cfg, norms), hidden_pre

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """feature_acts [..., d_sae] for x [..., d_in]."""
        return self.encode_with_hidden_pre(x)[0]

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """The reconstruction [..., d_in] from feature_acts [..., d_sae]."""
        return feature_acts @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # -- decoder norms ------------------------------------------------------------------------
    @torch.no_grad()
    def set_decoder_norm_to_unit_norm(self) -> None:
        """Rescale each decoder row to length 1 (after every optimiser step while training)."""
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True).clamp(min=1e-8)

    @torch.no_grad()
    def remove_gradient_parallel_to_decoder_directions(self) -> None:
        """Drop the part of W_dec's gradient that would only change row lengths (undone anyway)."""
        if self.W_dec.grad is None:
            return
        W = self.W_dec.data  # [d_sae, d_in], unit rows
        parallel = (self.W_dec.grad * W).sum(dim=1, keepdim=True)  # [d_sae, 1]
        self.W_dec.grad -= parallel * W

    @torch.no_grad()
    def fold_W_dec_norm(self) -> torch.Tensor:
        """Make every decoder row unit length, scaling the encoder so outputs do not change.

        Feature i's activation is multiplied by |W_dec[i]| and its row divided by it, so each
        product feature_acts[:, i] * W_dec[i] (and so the reconstruction) stays the same. ReLU
        commutes with this positive per-feature scaling, and TopK ranks features by that product,
        so it picks the same ones. Returns the old norms [d_sae].
        """
        norms = self.W_dec.data.norm(dim=1).clamp(min=1e-8)  # [d_sae]
        self.W_dec.data /= norms[:, None]
        self.W_enc.data *= norms[None, :]
        self.b_enc.data *= norms
        return norms

    @torch.no_grad()
    def fold_activation_scale(self, scale: float) -> None:
        """Undo training on x * scale: afterwards the SAE reads raw x and reports raw-scale acts."""
        self.b_dec.data /= scale
        self.b_enc.data /= scale

    # -- using it inside the model -------------------------------------------------------------
    def splice_hook(self, skip_first: bool = True):
        """A hook fn (for lm.hooks) that swaps the activation for the SAE's reconstruction.

        Position 0 (BOS) is left alone when skip_first: its activation is an outlier the SAE never
        trained on. The reconstruction keeps the activation's dtype.
        """
        def hook(act: torch.Tensor, point) -> torch.Tensor:  # act [batch, pos, d_in]
            with torch.no_grad():
                recon = self(act.float()).to(act.dtype)
            if skip_first and point.pos_offset == 0 and act.shape[1] > 0:
                recon[:, 0] = act[:, 0]
            return recon
        return hook

    # -- save and load --------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().contiguous().clone() for name, p in self.named_parameters()}

    def folder_files(self, notes: dict[str, str] | None = None) -> dict[str, bytes]:
        """SAELens's two files: cfg.json and sae_weights.safetensors (whose header also holds the
        lab's config and the notes, so the weights file alone still loads here). Note names start
        with "lab_" (file_format.NOTE_PREFIX)."""
        config = asdict(self.cfg)
        return {CONFIG_FILE: json.dumps(lens_config(config, notes), indent=1).encode(),
                WEIGHTS_FILE: save(self.tensors(), metadata={**(notes or {}), **config_metadata(config)})}

    def save(self, folder: str | Path, notes: dict[str, str] | None = None) -> Path:
        """Write the SAELens folder (cfg.json + sae_weights.safetensors); SAELens's
        SAE.load_from_disk(folder) loads it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.folder_files(notes).items():
            (folder / name).write_bytes(data)
        return folder

    def to_zip(self, notes: dict[str, str] | None = None, folder_name: str = "sae") -> bytes:
        """The SAELens folder as one .zip (what the page downloads; unzipped, SAELens loads it)."""
        return zip_folder(folder_name, self.folder_files(notes))

    def to_bytes(self, notes: dict[str, str] | None = None) -> bytes:
        """The lab's single .safetensors file: weights plus the config in its metadata, and any
        `notes` (string -> string) beside it; see file_format.read_notes."""
        return save(self.tensors(), metadata={**(notes or {}), **config_metadata(asdict(self.cfg))})

    @classmethod
    def load(cls, source: str | Path | bytes) -> SAE:
        """From a SAELens folder (or one SAE.save wrote), a .zip of one, a lab .safetensors file, or
        the bytes of to_zip() / to_bytes().

        Anything wrong with the file (it may come from an upload) raises ValueError with a message
        for the learner. The header, the config, the shapes and the sizes are checked before the SAE
        is built (file_format): a config claiming a huge d_sae costs nothing.
        """
        if isinstance(source, bytes | bytearray):
            return cls.from_file(open_sae_bytes(bytes(source)))
        path = Path(source)
        if path.is_dir():
            return cls.from_file(open_sae_folder(path))
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ValueError(f"Could not read the SAE from {path}: {err.strerror or err}.") from err
        return cls.from_file(open_sae_bytes(raw))

    @classmethod
    def from_file(cls, file: SAEFile) -> SAE:
        """Build the SAE of a checked file: weights as float32 (finite), SAELens's options rewritten
        into this lab's form (file_format's docstring), decoder rows folded to unit length."""
        w = {name: load_float32(file.header, name) for name in PARAMETER_SHAPES}
        off_unit = float((w["W_dec"].norm(dim=1) - 1).abs().max()) if file.config.d_sae else 0.0
        if file.unit_rows_required:
            norms = w["W_dec"].norm(dim=1)  # [d_sae]
            if off_unit > UNIT_ROWS:
                raise ValueError(
                    "This TopK SAE picks features by pre-activation alone (rescale_acts_by_decoder_norm "
                    f"false) but its decoder rows are not unit length (from {float(norms.min()):.3g} to "
                    f"{float(norms.max()):.3g}), so this lab would pick other features. Fold the decoder "
                    "norms in SAELens (fold_W_dec_norm) and save it again.")
        if not file.b_dec_in_encoder:  # the encoder read x: (x - b_dec) @ W_enc + b_enc' is the same
            w["b_enc"] = w["b_enc"] + w["b_dec"] @ w["W_enc"]
        sae = cls(file.config)  # safe now: its weights are no bigger than the file's
        sae.load_state_dict(w)
        if file.fold_decoder_norms and off_unit > ROUNDING:  # rows already unit length stay untouched
            sae.fold_W_dec_norm()
        return sae.eval()


def sparsify(hidden_pre: torch.Tensor, cfg: SAEConfig, dec_norms: torch.Tensor | None = None
             ) -> torch.Tensor:
    """The SAE's activation function: ReLU, or TopK: ReLU of the k features whose contribution
    (pre-activation x decoder row length, dec_norms; just the pre-activation when the rows have
    unit length) is largest. Ranking by contribution keeps fold_W_dec_norm exact for TopK too."""
    if cfg.architecture == "relu":
        return torch.relu(hidden_pre)
    score = hidden_pre if dec_norms is None else hidden_pre * dec_norms
    indices = score.topk(cfg.k, dim=-1).indices  # [..., k]
    values = hidden_pre.gather(-1, indices)
    return torch.zeros_like(hidden_pre).scatter_(-1, indices, torch.relu(values))


def perfect_sae(d_in: int, hook_name: str = "", model_spec: str = "") -> SAE:
    """An SAE that reconstructs exactly: features +e_i and -e_i, so ReLU(x) - ReLU(-x) = x.

    Useful as an oracle: splicing it into a model must leave the logits unchanged.
    """
    sae = SAE(SAEConfig(d_in, 2 * d_in, hook_name=hook_name, model_spec=model_spec))
    eye = torch.eye(d_in)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))  # [d_in, 2 d_in]
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))  # [2 d_in, d_in]
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()
