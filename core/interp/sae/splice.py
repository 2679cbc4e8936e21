"""Splicing an SAE into the model: does the model still work on the reconstruction?

Explained variance says how close x_hat is to x, but not whether the part that is missing matters
to the model. So we ask the model itself: run it with the activation at the SAE's hook replaced by
the SAE's reconstruction (spliced) and compare its next-token cross-entropy with the clean model
and with the activation replaced by zeros (zero-ablation, the worst case). "Loss recovered" =
(zero - spliced) / (zero - clean): 100% means the model loses nothing when it reads the SAE's
version, 0% means the SAE is as useless as zeros. The first position (BOS) is left alone in both,
as the SAE never trained on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.interp.sae.model import SAE


@dataclass(frozen=True)
class SpliceLosses:
    """Next-token cross-entropy (nats) of the model: clean, with the SAE spliced in, zero-ablated."""

    clean: float
    spliced: float
    zero: float

    @property
    def recovered(self) -> float:
        """(zero - spliced) / (zero - clean): 1 means the reconstruction loses nothing."""
        gap = self.zero - self.clean
        return float("nan") if abs(gap) < 1e-9 else (self.zero - self.spliced) / gap


def real_tokens(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[batch, pos] True at the real (not padding) tokens of right-padded tokens."""
    return torch.arange(tokens.shape[1])[None, :] < lengths[:, None]


class SpliceEvaluator:
    """Spliced losses of many SAEs at one hook on one batch: the clean and zero-ablated losses do
    not depend on the SAE, so they are computed once (or passed in as `baseline`), and each SAE
    costs one forward pass."""

    def __init__(self, lm, hook_name: str, tokens: torch.Tensor, lengths: torch.Tensor, *,
                 baseline: tuple[float, float] | None = None):
        self.lm, self.hook_name, self.tokens = lm, hook_name, tokens  # tokens [batch, pos]
        self.mask = real_tokens(tokens, lengths)
        self.clean, self.zero = baseline if baseline is not None else self.baseline()

    @torch.no_grad()
    def baseline(self) -> tuple[float, float]:
        """(clean, zero-ablated) cross-entropy: nothing changed, and zeros at the hook (BOS kept)."""
        def zero(act, point):
            out = torch.zeros_like(act)
            if point.pos_offset == 0:
                out[:, 0] = act[:, 0]
            return out

        clean = float(self.lm.loss(self.tokens, mask=self.mask))
        with self.lm.hooks([(self.hook_name, zero)]):
            zeroed = float(self.lm.loss(self.tokens, mask=self.mask))
        return clean, zeroed

    @torch.no_grad()
    def __call__(self, sae: SAE) -> SpliceLosses:
        with self.lm.hooks([(self.hook_name, sae.splice_hook())]):
            spliced = float(self.lm.loss(self.tokens, mask=self.mask))
        return SpliceLosses(self.clean, spliced, self.zero)


def splice_losses(lm, sae: SAE, tokens: torch.Tensor, lengths: torch.Tensor) -> SpliceLosses:
    """Cross-entropy on tokens [batch, pos] (right-padded to lengths): clean, with sae's
    reconstruction at sae.cfg.hook_name, and with zeros there (BOS left alone in both)."""
    return SpliceEvaluator(lm, sae.cfg.hook_name, tokens, lengths)(sae)
