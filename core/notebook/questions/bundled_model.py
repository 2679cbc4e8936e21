"""Questions of the bundled-model page, graded on its evaluation report (core.bundled.evaluate): the
model passes every floor on sentences of its grammar, so where outside it does it break down most?"""

from __future__ import annotations

from collections.abc import Mapping

from core.notebook.questions import Grade, Question, register
from core.world import grammar as G
from core.world import world as W
from core.world.datasets import fact_prompts
from core.world.metrics import NOVEL_IOI

NEAR_WORST = 0.05  # a test within this accuracy of the worst one fails as badly: it counts as right

# The report's limit tests (core.world.metrics.NOVEL_IOI and the held-out fact prompts) as the
# learner picks them.
LIMITS = {"New frame, known words": "new phrasing, known words",
          "Words it never saw": "unknown words",
          "Facts in new words": "facts, paraphrased"}


def example(label: str) -> str:
    """One prompt of the test, built by the same generator the report used."""
    name = LIMITS[label]
    if name in NOVEL_IOI:
        values = {"A": "Mary", "B": "John", "S": "John", "place": W.PLACES[0], "object": W.OBJECTS[0]}
        return G.text(G.fill(NOVEL_IOI[name][0], values)[0])
    held, seen = fact_prompts("heldout")[0], fact_prompts("train")[0]
    return f"{held.prompt} (it was trained on “{seen.prompt}”)"


def limit_accuracies(report: Mapping) -> dict[str, float]:
    """Each limit test's top-1 accuracy, by the learner's name for it (LIMITS), from the report."""
    limits = report.get("limits") or {}
    return {label: float(limits[name]["accuracy"]) for label, name in LIMITS.items() if name in limits}


def floors_words(report: Mapping) -> str:
    """What the report says about the model inside its grammar (the question's first sentence)."""
    if report.get("all_floors_pass"):
        return "The model passes every floor on sentences of its own grammar."
    return "The model misses at least one floor even on sentences of its own grammar."


def can_ask(report: Mapping | None) -> bool:
    """The report measured every test the question offers."""
    return report is not None and len(limit_accuracies(report)) == len(LIMITS)


def grade_worst_limit(report: Mapping, answer: str) -> Grade:
    """Right when the chosen test is the one the model gets right least often (or within NEAR_WORST)."""
    accuracy = limit_accuracies(report)
    if answer not in accuracy:
        raise ValueError(f"{answer!r} is not one of {tuple(accuracy)}")
    worst = min(accuracy, key=accuracy.get)
    correct = accuracy[answer] <= accuracy[worst] + NEAR_WORST
    order = sorted(accuracy, key=accuracy.get)
    ranked = "; ".join(f"{label} {accuracy[label]:.0%}" for label in order)
    detail = f"{answer}: {accuracy[answer]:.0%} right"
    return Grade(correct, f"{worst.lower()} is worst, {accuracy[worst]:.0%} right (all: {ranked})",
                 detail if answer != worst else "")


WORST_LIMIT = register(Question(
    id="bundled_model.worst_limit", page="bundled-model",
    text="{floors} Outside the grammar, which of these will it get right least often?",
    kind="choice", grader=grade_worst_limit, options=tuple(LIMITS)))
