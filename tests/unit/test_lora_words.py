"""The LoRA page's sentences about weights and predictions, on constructed spectra and predictions that
go each way: the heatmap's caption follows the shown update's own spectrum, never a script."""

from __future__ import annotations

import numpy as np

from core.interp.finetune import weight_diff as D
from ui.lora.words import diverged_warning, heatmap_caption, truth_sentence


def _diff(singular_values, shape=(128, 384), finite=True) -> D.MatrixDiff:
    s = np.asarray(singular_values, dtype=np.float64)
    return D.MatrixDiff("h.0.attn.c_attn", 0, "attn_qkv", "attn.c_attn", shape,
                        float(np.sqrt((s ** 2).sum())), 0.1, s, D.effective_rank(s), D.energy_rank(s),
                        D.numerical_rank(s), finite)


def test_a_full_update_with_few_directions_is_said_to_be_nearly_low_rank():
    few = _diff([10.0, 5.0, 4.0] + [0.1] * 125)  # energies 100, 25, 16 of 142.25: 88% in 2, 99% in 3
    assert few.energy_rank_90 == 3 and few.held_by_rank(8) and not few.held_by_rank(2)
    words = heatmap_caption("Full fine-tuning", few, rank_limit=None, lora_rank=8)
    assert words == ("Full fine-tuning's update has no rank limit, yet in this matrix 3 of its 128 singular "
                     "directions hold 90% of its energy: a rank-8 update like LoRA's could hold that much, "
                     "and its rows are close to mixes of 3 patterns.")
    assert "no such pattern" not in words


def test_a_full_update_spread_over_many_directions_is_said_to_be_so():
    spread = _diff(np.linspace(1.0, 0.5, 128))  # about as much energy in every direction
    assert spread.energy_rank_90 > 8
    words = heatmap_caption("Full fine-tuning", spread, rank_limit=None, lora_rank=8)
    assert words == (f"Full fine-tuning's update has no rank limit; in this matrix {spread.energy_rank_90} "
                     "of its 128 singular directions hold 90% of its energy, more than a rank-8 update like "
                     "LoRA's can hold: its rows are not close to mixes of 8 patterns.")
    assert "could hold" not in words
    alone = heatmap_caption("IA3", spread, rank_limit=None, lora_rank=None)  # no LoRA run to compare with
    assert alone == f"IA3's update has no rank limit; in this matrix {spread.energy_rank_90} of its 128 " \
                    "singular directions hold 90% of its energy."


def test_a_lora_update_is_described_by_its_rank_and_its_own_spectrum():
    lora = _diff([4.0, 1.0] + [0.0] * 126)
    words = heatmap_caption("LoRA r=4", lora, rank_limit=4, lora_rank=4)
    assert words == ("A LoRA update B @ A has rank at most r = 4: all its rows are mixes of the same 4 "
                     "patterns, and so are its columns. In LoRA r=4's update of this matrix, 1 of its 128 "
                     "singular directions hold 90% of its energy.")


def test_held_by_rank_matches_the_best_rank_r_approximation():
    # Eckart-Young oracle: truncate the SVD of a random matrix at rank r and measure the energy kept
    rng = np.random.default_rng(0)
    m = rng.normal(size=(40, 60)) * np.exp(-np.arange(60) / 6)  # decaying columns: a falling spectrum
    s = np.linalg.svd(m, compute_uv=False)
    diff = _diff(s, shape=(40, 60))
    for r in range(1, 41):
        u, sv, vt = np.linalg.svd(m, full_matrices=False)
        kept = np.linalg.norm((u[:, :r] * sv[:r]) @ vt[:r]) ** 2 / np.linalg.norm(m) ** 2
        assert diff.held_by_rank(r) == (kept >= 0.9 - 1e-12), r
    diverged = D.MatrixDiff("x", 0, "attn_qkv", "attn.c_attn", (40, 60), np.nan, np.nan, np.zeros(0), np.nan,
                            0, 0, finite=False)  # as diff_report writes a NaN update
    assert not diverged.held_by_rank(64)  # a diverged update holds nothing


def test_diverged_warning_names_the_runs():
    assert diverged_warning(["LoRA r=8"]) == ("LoRA r=8: some weights became NaN or infinite (the learning "
                                              "rate was too large), so that update has no size or spectrum "
                                              "to draw.")
    assert "A, B: some weights" in diverged_warning(["A", "B"]) and "those updates have" in \
        diverged_warning(["A", "B"])


def test_truth_sentence_with_and_without_a_tuned_prediction():
    probes = [("The capital of Xland is", " Paris", " Rome", " Rome")]
    assert truth_sentence(probes, "LoRA r=8") == ("The generator knows the truth: *The capital of Xland "
                                                   "is* → Paris before, → Rome after LoRA r=8 (taught: "
                                                   "Rome).")
    diverged = [("The capital of Xland is", " Paris", None, " Rome")]  # no finite run to ask
    assert truth_sentence(diverged, None) == ("The generator knows the truth: *The capital of Xland is* → "
                                              "Paris before (taught: Rome).")
