"""What changed in the weights: delta W per matrix, its size, and how low-rank it is.

For every adapted matrix the update is written out as a matrix shaped like the base weight:

    LoRA          delta W = (alpha / r) * B @ A          A [r, d_in], B [d_out, r]
    IA3           delta W = (l - 1) * W                  l scales each output (or input) unit
    full FT       delta W = W_tuned - W_base

(GPT-2 stores its weights [d_in, d_out], so there delta W is transposed to match.) Three views:

- size: the Frobenius norm ||delta W||_F = sqrt(sum of squares), also relative to ||W||_F.
- spectrum: the singular values s_1 >= s_2 >= ... of delta W. A LoRA update has at most r non-zero
  ones, whatever it learned. Full fine-tuning has no such limit; its spectrum shows how low-rank a
  free update turns out to be. Effective rank (Roy & Vetterli, 2007) = exp(entropy of s / sum(s)):
  1 when one direction carries everything, min(d_out, d_in) when all are equal. energy rank 90% =
  how many singular values hold 90% of sum(s^2), so a rank-r update (a LoRA's) could hold 90% of it
  exactly when that number is at most r (`MatrixDiff.held_by_rank`).
- overlap: do LoRA and full fine-tuning move the same directions? With U_k the top-k left singular
  vectors (output directions) of each update, overlap = ||U_lora^T U_full||_F^2 / k lies in [0, 1]:
  1 = the same k-dimensional subspace, k / d_out = what two random subspaces would give (the
  subspace similarity of the LoRA paper, section 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from peft.tuners.ia3 import IA3Layer
from peft.tuners.lora import LoraLayer

from core.interp.finetune.targets import target_modules


def lora_delta(lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float,
               fan_in_fan_out: bool = False) -> torch.Tensor:
    """(alpha / r) * B @ A: [d_out, r] @ [r, d_in] -> [d_out, d_in] ([d_in, d_out] if fan_in_fan_out)."""
    delta = (lora_B.float() @ lora_A.float()) * scaling  # [d_out, d_in]
    return delta.T if fan_in_fan_out else delta


def ia3_delta(weight: torch.Tensor, ia3_l: torch.Tensor, fan_in_fan_out: bool = False) -> torch.Tensor:
    """(l - 1) * W: l is [d_out, 1] (scales outputs) or [1, d_in] (scales inputs), in Linear layout."""
    scale = ia3_l.float().T if fan_in_fan_out else ia3_l.float()
    return weight.float() * (scale - 1)


def _base_weight(module) -> torch.Tensor:
    return module.get_base_layer().weight if hasattr(module, "get_base_layer") else module.weight


def deltas(base_lm, tuned_lm, roles=None, adapter: str = "default", names=None) -> dict[str, torch.Tensor]:
    """Full module name -> delta W (shaped like the base weight) for every target matrix of `roles`
    (or only those in `names`).

    Read from the tuned model's own modules: LoRA layers give B @ A, IA3 layers their scales, and
    plain modules (full fine-tuning) the difference from the base model's weight.
    """
    roles = roles or tuple(base_lm.adapter.target_roles)
    base_modules = dict(base_lm.model.named_modules())
    tuned_modules = dict(tuned_lm.model.named_modules())
    out = {}
    for name in target_modules(base_lm, roles):
        if names is not None and name not in names:
            continue
        module = tuned_modules[name]
        if isinstance(module, LoraLayer):
            if adapter not in module.lora_A:
                continue  # this matrix was not adapted
            out[name] = lora_delta(module.lora_A[adapter].weight, module.lora_B[adapter].weight,
                                   module.scaling[adapter], module.fan_in_fan_out)
        elif isinstance(module, IA3Layer):
            if adapter not in module.ia3_l:
                continue
            out[name] = ia3_delta(_base_weight(module), module.ia3_l[adapter], module.fan_in_fan_out)
        else:
            out[name] = (module.weight.float() - base_modules[name].weight.float()).detach()
    return {k: v.detach() for k, v in out.items()}


def effective_rank(s: np.ndarray, rtol: float = 1e-6) -> float:
    """exp(entropy of the normalised singular values); 0 for a zero matrix. Values under
    rtol * s_max are float rounding noise (a rank-r product in float32 leaves ~1e-8 s_max), not rank."""
    if not s.size or s.max() <= 0:
        return 0.0
    s = s[s > rtol * s.max()].astype(np.float64)
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def energy_rank(s: np.ndarray, share: float = 0.9) -> int:
    """How many of the largest singular values hold `share` of sum(s^2); 0 for a zero matrix."""
    energy = np.cumsum(s.astype(np.float64) ** 2)
    if energy[-1] <= 0:
        return 0
    return int(np.searchsorted(energy, share * energy[-1] - 1e-12) + 1)


def numerical_rank(s: np.ndarray, rtol: float = 1e-4) -> int:
    """Singular values above rtol * s_max (float32 arithmetic leaves ~1e-7 s_max of noise)."""
    return int((s > rtol * s.max()).sum()) if s.size and s.max() > 0 else 0


@dataclass(frozen=True)
class MatrixDiff:
    name: str  # full module name
    layer: int
    role: str
    module: str  # name inside the block ("attn.c_attn")
    shape: tuple[int, int]
    fro: float  # ||delta W||_F
    rel_fro: float  # ||delta W||_F / ||W_base||_F
    singular_values: np.ndarray  # descending
    effective_rank: float
    energy_rank_90: int
    rank: int
    finite: bool = True  # False when delta W holds NaN or inf (training diverged): no spectrum

    def held_by_rank(self, r: int) -> bool:
        """Could a rank-r matrix hold 90% of this update's energy? The best rank-r approximation
        keeps the r largest squared singular values (Eckart-Young), so exactly when energy_rank_90 <= r.
        False for a diverged update."""
        return self.finite and self.energy_rank_90 <= r


def diff_report(base_lm, delta: dict[str, torch.Tensor]) -> list[MatrixDiff]:
    """One MatrixDiff per matrix, in layer then role order."""
    where = target_modules(base_lm, tuple(base_lm.adapter.target_roles))
    base_modules = dict(base_lm.model.named_modules())
    out = []
    for name, d in delta.items():
        layer, role, rel = where[name]
        if not bool(torch.isfinite(d).all()):  # a diverged run: no spectrum to speak of
            out.append(MatrixDiff(name, layer, role, rel, tuple(d.shape), float("nan"), float("nan"),
                                  np.zeros(0), float("nan"), 0, 0, finite=False))
            continue
        s = torch.linalg.svdvals(d.double()).numpy()
        base_norm = float(base_modules[name].weight.float().norm())
        fro = float(d.norm())
        out.append(MatrixDiff(name, layer, role, rel, tuple(d.shape), fro,
                              fro / base_norm if base_norm else float("nan"), s, effective_rank(s),
                              energy_rank(s), numerical_rank(s)))
    order = list(where)
    return sorted(out, key=lambda m: order.index(m.name))


def subspace_overlap(delta_a: torch.Tensor, delta_b: torch.Tensor, k: int, side: str = "output") -> float:
    """||U_a^T U_b||_F^2 / k for the top-k singular vectors of each (output = left, input = right).

    Both matrices are read in the Linear layout [d_out, d_in]; pass GPT-2's [d_in, d_out] transposed,
    or just pass both in the same layout and pick the side accordingly."""
    a, b = delta_a.double(), delta_b.double()
    if side == "input":
        a, b = a.T, b.T
    k = max(1, min(k, *a.shape, *b.shape))
    U_a = torch.linalg.svd(a, full_matrices=False).U[:, :k]  # [d, k]
    U_b = torch.linalg.svd(b, full_matrices=False).U[:, :k]
    return float((U_a.T @ U_b).pow(2).sum() / k)


def output_axis(lm) -> int:
    """Which axis of a stored weight is d_out: 1 for GPT-2's Conv1D ([d_in, d_out]), else 0."""
    return 1 if lm.cfg.arch == "gpt2" else 0


def overlaps(lm, delta_a: dict[str, torch.Tensor], delta_b: dict[str, torch.Tensor], k: int
             ) -> dict[str, tuple[float, float, float]]:
    """name -> (output-side overlap, input-side overlap, chance level k / d_out) on shared matrices."""
    flip = output_axis(lm) == 1
    out = {}
    for name in delta_a.keys() & delta_b.keys():
        a, b = (delta_a[name].T, delta_b[name].T) if flip else (delta_a[name], delta_b[name])
        chance = min(k, a.shape[0]) / a.shape[0]
        if not bool(torch.isfinite(a).all() and torch.isfinite(b).all()):  # a diverged run
            out[name] = (float("nan"), float("nan"), chance)
            continue
        out[name] = (subspace_overlap(a, b, k, "output"), subspace_overlap(a, b, k, "input"), chance)
    return out


def pool_signed(matrix: torch.Tensor, max_side: int = 128) -> np.ndarray:
    """Shrink a matrix for a heatmap by the same factor on both axes (so it keeps its shape) until
    neither side exceeds max_side; each cell keeps the entry of largest |value| in its block."""
    m = matrix.float()
    f = max(1, -(-max(m.shape) // max_side))  # block side
    rows, cols = -(-m.shape[0] // f), -(-m.shape[1] // f)
    padded = torch.zeros(rows * f, cols * f)
    padded[: m.shape[0], : m.shape[1]] = m
    blocks = padded.reshape(rows, f, cols, f).permute(0, 2, 1, 3).reshape(rows, cols, f * f)
    pick = blocks.abs().argmax(-1, keepdim=True)
    return blocks.gather(-1, pick)[..., 0].numpy()
