"""Questions of the Probes page, graded on the page's ProbeReport (core.interp.probes.probe) with
the readability verdict the page words (core.interp.probes.verdicts)."""

from __future__ import annotations

from core.interp.probes.probe import ProbeReport
from core.interp.probes.verdicts import readability
from core.models.hook_names import layer_words
from core.notebook.questions import Grade, Question, register


def _grade_first_readable(report: ProbeReport, answer: int) -> Grade:
    """Right when the answer is the first layer whose held-out score reaches READABLE_AT."""
    r = readability(report)
    answer = int(answer)
    mine = (f"{layer_words(answer)} scores {report.test_score[report.index(answer)]:.2f}"
            if answer in report.layers else f"{layer_words(answer)} is not probed here")
    if r.first is None:
        best = report.layers[r.best]
        return Grade(False, f"no layer reaches {r.threshold:.2f} held-out {report.metric} "
                            f"(the best: {layer_words(best)}, {r.score:.2f})", mine)
    first = report.layers[r.first]
    before = (f"; {layer_words(report.layers[r.first - 1])}: {r.before:.2f}" if r.before is not None else "")
    return Grade(answer == first, f"{layer_words(first)} first reaches {r.threshold:.2f} "
                                  f"({r.score:.2f}{before})", mine)


FIRST_READABLE = register(Question(
    id="probes.first_readable", page="probes",
    text="At which layer does a probe on the {site} first reach {threshold} on **{property}**?",
    kind="layer", grader=_grade_first_readable))
