"""The probes page's verdict on the causal check follows the numbers it reports."""

from __future__ import annotations

import numpy as np
import pytest

from core.interp.probes.causal import CausalResult
from ui.probes.frames import causal_summary

CONDITIONS = ("clean", "probe weights removed", "class-mean difference removed",
              "random direction removed")


def _result(means, flipped) -> CausalResult:
    return CausalResult("blocks.3.hook_resid_post", CONDITIONS, np.array(means, dtype=float),
                        np.zeros(4), np.ones(4), np.array(flipped, dtype=float), 1)


@pytest.mark.parametrize("means, flipped, verdict, named", [
    # flips 60% of choices, a random direction none: used to choose
    ([10.0, -2.0, 9.0, 9.8], [0.0, 0.6, 0.0, 0.0], "uses** this direction to choose", "probe weights"),
    # no flips, but half the effect gone with the class-mean direction: used, not alone
    ([10.0, 8.5, 5.0, 10.0], [0.0, 0.0, 0.0, 0.0], "though not alone: 50% of the effect",
     "class-mean difference"),
    # no flips, as little lost as with a random direction: read elsewhere
    ([10.0, 9.0, 9.5, 9.2], [0.0, 0.0, 0.0, 0.0], "does **not** rely", "probe weights"),
])
def test_verdict_levels(means, flipped, verdict, named):
    text = causal_summary(_result(means, flipped), "3")
    assert verdict in text
    assert f"removing the **{named}**" in text


def test_a_random_direction_that_hurts_as_much_is_no_evidence():
    text = causal_summary(_result([10.0, 6.0, 9.0, 6.5], [0.0, 0.0, 0.0, 0.0]), "3")
    assert "does **not** rely" in text  # 40% gone, but 35% with a random direction
