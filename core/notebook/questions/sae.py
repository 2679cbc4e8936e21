"""Questions of the Sparse autoencoders page, graded on the page's result: the SAE's report
(core.interp.sae.report.Report), whose findings say which of the world's word lists it found."""

from __future__ import annotations

from core.interp.sae.verdict import FOUND_AUROC
from core.notebook.questions import Grade, Question, register, within
from core.world.datasets import token_groups

COUNT_TOLERANCE = 1  # a count within one of the measured number of attributes found counts as right
N_ATTRIBUTES = len(token_groups())  # the bundled world's word lists


def _grade_found(report, answer: float) -> Grade:
    f = report.findings
    names = ", ".join(m.attribute for m in f.found) or "none"
    measured = f"{f.n_found} of {f.n_total} found ({names})"
    miss = abs(float(answer) - f.n_found)
    detail = ("exactly" if miss == 0 else f"{miss:g} off") + f"; right within {COUNT_TOLERANCE}"
    return Grade(within(answer, f.n_found, COUNT_TOLERANCE), measured, detail)


HOW_MANY_FOUND = register(Question(
    id="sae.how_many_found", page="sae",
    text=("How many of the {n} known attributes (colours, places, female names, ...) will this SAE find, "
          f"that is, give one feature that picks out the list's tokens with AUROC {FOUND_AUROC:g} or more?"),
    kind="number", grader=_grade_found, number_range=(0.0, float(N_ATTRIBUTES), 1.0), unit="attributes"))
