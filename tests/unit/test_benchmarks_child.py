"""benchmarks.in_child_process: a benchmark run in a fresh process with its own environment."""

from __future__ import annotations

import pytest

from benchmarks import Result, in_child_process
from core.models.dtype import ISA_CAP_VARIABLE


def rows_from_the_child() -> list[Result]:
    """Run in the child: what it measured, with the child's own machine context."""
    import os

    return [Result("child", 1.5, "s", peer="peer", peer_value=3.0, ratio_spread=(0.4, 0.6), repeats=5,
                   threads=2, ratio_median=0.5, note=os.environ.get(ISA_CAP_VARIABLE, "unset"))]


def test_results_come_back_from_a_child_with_its_environment():
    (row,) = in_child_process("tests.unit.test_benchmarks_child:rows_from_the_child",
                              {ISA_CAP_VARIABLE: "AVX512_CORE_BF16"})
    got = (row.name, row.value, row.peer_value, row.ratio, row.repeats, row.threads)
    assert got == ("child", 1.5, 3.0, 0.5, 5, 2)
    assert row.ratio_spread == (0.4, 0.6)
    assert row.note == "AVX512_CORE_BF16"  # the variable reached the child
    assert row.context["cpu"].endswith("; oneDNN capped at AVX512_CORE_BF16")  # measured there, and said


def test_a_failing_child_raises_with_its_error():
    with pytest.raises(RuntimeError, match="no_such_function"):
        in_child_process("tests.unit.test_benchmarks_child:no_such_function", {})
