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


@torch.no_grad()
def splice_losses(lm, sae: SAE, tokens: torch.Tensor, lengths: torch.Tensor) -> SpliceLosses:
    """Cross-entropy on tokens [batch, pos] (right-padded to lengths): clean, with sae's
    reconstruction at sae.cfg.hook_name, and with zeros there (BOS left alone in both)."""
    targets = tokens[:, 1:]  # [batch, pos - 1]
    mask = torch.arange(1, tokens.shape[1])[None, :] < lengths[:, None]

    def ce(logits: torch.Tensor) -> float:
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(),
                                                targets.flatten(), reduction="none")
        return float((nll * mask.flatten()).sum() / mask.sum())

    def zero(act, point):
        out = torch.zeros_like(act)
        if point.pos_offset == 0:
            out[:, 0] = act[:, 0]
        return out

    clean = ce(lm(tokens))
    with lm.hooks([(sae.cfg.hook_name, sae.splice_hook())]):
        spliced = ce(lm(tokens))
    with lm.hooks([(sae.cfg.hook_name, zero)]):
        zeroed = ce(lm(tokens))
    return SpliceLosses(clean, spliced, zeroed)
