"""Fourier sparsity of the embedding: how a transformer that groks modular addition represents numbers.

Nanda et al. (2023) found that a transformer trained on a + b mod p ends up computing with waves:
it embeds each number a as cos(w a) and sin(w a) for a handful of "key frequencies" w = 2 pi k / p,
and adds angles inside attention and the MLP. Memorising, before grokking, needs no such structure.

Read off the embedding W_E restricted to the number tokens, [p, d_model]: take the discrete Fourier
transform along the number axis (for each of the d_model directions), and add up the power at each
frequency k = 1 .. (p - 1) / 2 (k and p - k are one real wave). The constant term (k = 0) says
nothing about which number it is and is left out. The sparsity is the share of that power in the
FOURIER_TOP_K strongest frequencies: a random embedding spreads its power evenly (about
FOURIER_TOP_K / ((p - 1) / 2)), an embedding built from a few key frequencies puts most of it there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FOURIER_TOP_K = 5  # the number of key frequencies counted (Nanda et al. found about 5 for p = 113)


@dataclass(frozen=True)
class FourierPower:
    """power[k - 1] for frequencies k = 1 .. (p - 1) // 2, normalised to sum to 1."""

    power: list[float]

    @property
    def sparsity(self) -> float:
        """Share of the power in the FOURIER_TOP_K strongest frequencies."""
        return float(sum(sorted(self.power, reverse=True)[:FOURIER_TOP_K]))

    @property
    def key_frequencies(self) -> list[int]:
        """The FOURIER_TOP_K strongest frequencies k, strongest first."""
        order = sorted(range(len(self.power)), key=lambda i: -self.power[i])
        return [i + 1 for i in order[:FOURIER_TOP_K]]

    @property
    def uniform_sparsity(self) -> float:
        """What the sparsity would be with the power spread evenly."""
        return min(1.0, FOURIER_TOP_K / max(1, len(self.power)))


def fourier_power(W_E_numbers: torch.Tensor) -> FourierPower:
    """W_E_numbers [p, d_model]: the embedding rows of the numbers 0 .. p - 1, in order."""
    p = W_E_numbers.shape[0]
    spectrum = torch.fft.rfft(W_E_numbers.detach().float(), dim=0)  # [p // 2 + 1, d_model] complex
    power = spectrum.abs().pow(2).sum(dim=1)[1: (p - 1) // 2 + 1]  # [frequency]; k = 0 dropped
    total = float(power.sum())
    normalised = (power / total).tolist() if total > 0 else [0.0] * len(power)
    return FourierPower(normalised)
