"""The XOR page: it trains on open, retrains when a control moves, names failures, replays training,
and keeps the learner's prediction next to the outcome."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from tests.app.helpers import open_page, texts


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _chart_frames(at) -> list[list]:
    """The data frames of every Altair chart on the page, in page order (the boundary chart first)."""
    return [[pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets]
            for chart in at.get("vega_lite_chart")]


def _epoch_caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Epoch "))


def test_default_run_solves_xor_and_moving_a_control_retrains():
    at = open_page("app_pages/xor.py")
    assert _metric(at, "Accuracy") == "100%"
    assert "Solved: 100% of points right" in texts(at)
    loss_before = float(_metric(at, "Final loss"))
    assert loss_before < 0.05
    heat_before = _chart_frames(at)[0][0]["value"].to_numpy()  # p over the grid
    at.slider(key="xor_units1").set_value(1).run()
    assert not at.exception
    heat_after = _chart_frames(at)[0][0]["value"].to_numpy()
    assert heat_before.shape == heat_after.shape == (3600,) and np.abs(heat_before - heat_after).max() > 0.3
    # one hidden unit draws one line: XOR cannot be solved, and the page says so
    assert _metric(at, "Accuracy") in ("50%", "75%")
    assert float(_metric(at, "Final loss")) > 10 * loss_before
    assert "Solved" not in texts(at)
    assert "a 2-1-1 tanh net" in texts(at)


def test_a_diverging_learning_rate_is_named_and_no_nan_is_shown():
    at = open_page("app_pages/xor.py", query={"xor_act": "ReLU", "xor_opt": "SGD", "xor_lr": "30",
                                               "xor_units1": "4"})
    assert "a 2-4-1 ReLU net" in texts(at) and "SGD lr 30" in texts(at)
    error = " ".join(e.value for e in at.error)
    match = re.search(r"Diverged at epoch (\d+)", error)
    assert match, error
    n = int(match.group(1))
    assert _metric(at, "Epochs trained") == str(n - 1)
    shown = [m.value for m in at.metric] + [_epoch_caption(at)]
    assert not any(re.search(r"\bnan\b|\binf\b", s.lower()) for s in shown), shown
    for frames in _chart_frames(at):
        for frame in frames:
            numbers = frame.select_dtypes("number").to_numpy(dtype=float)
            assert np.isfinite(numbers).all()


def test_all_zero_init_is_diagnosed_as_symmetric_and_stuck():
    at = open_page("app_pages/xor.py", query={"xor_init": "All zero", "xor_units1": "4"})
    shown = texts(at)
    assert "Symmetric units: units 1, 2, 3, 4 are identical" in shown
    assert "Stuck on a plateau since epoch 0" in shown


def test_scrubbing_and_stepping_replay_training():
    at = open_page("app_pages/xor.py")
    assert _epoch_caption(at) == "Epoch 500: loss 0.003707, 100% of points right."
    at.select_slider(key="xor_epoch").set_value(0).run()
    assert _epoch_caption(at) == "Epoch 0: loss 0.8946, 50% of points right."  # the initial weights
    at.button(key="xor_next").click().run()
    assert _epoch_caption(at).startswith("Epoch 5:")
    at.button(key="xor_end").click().run()
    assert _epoch_caption(at).startswith("Epoch 500:")


def test_backprop_trace_shows_the_chosen_example():
    at = open_page("app_pages/xor.py")
    trace_text = [m.value for m in at.markdown if m.value.startswith("Forward: p =")]
    assert "class 1 (y = 1)" in trace_text[0]  # default example #2, x = (0, 1)
    at.selectbox(key="xor_example").set_value(3).run()
    trace_text = [m.value for m in at.markdown if m.value.startswith("Forward: p =")]
    assert "class 0 (y = 0)" in trace_text[0]  # #4, x = (1, 1)
    weights = at.dataframe[1].value  # the tables: every unit, then every weight
    assert len(weights) == 9 and list(weights["weight"])[:2] == ["W1[1,1]", "W1[1,2]"]


def test_predict_then_run():
    at = open_page("app_pages/xor.py", state={"xor_predict_first": True})
    assert "The results are hidden until you lock in a prediction." in texts(at)
    assert not at.metric and not [s for s in at.subheader if s.value == "Watch it train"]
    at.radio(key="xor_guess").set_value("stuck")
    at.text_input(key="xor_why").input("two units are too few")
    at.form_submit_button[0].click()
    at.run()
    shown = texts(at)
    assert "**You predicted:** Gets stuck" in shown and "two units are too few" in shown
    assert "**What happened:** Solves it" in shown and "not this time" in shown
    assert _metric(at, "Accuracy") == "100%"
    at.slider(key="xor_units1").set_value(3).run()  # a new setup asks for a new prediction
    assert "You predicted" not in texts(at) and not at.metric


def test_a_bad_csv_gets_a_message_and_a_good_one_trains():
    at = open_page("app_pages/xor.py", query={"xor_data": "Your own CSV", "xor_units1": "4"})
    assert "Upload a file to train on it." in texts(at)
    at.file_uploader(key="xor_csv").set_value(("bad.csv", b"x,y,label\n1,2,a\n3,4,b\n5,6,c\n", "text/csv"))
    at.run()
    assert not at.exception
    assert "Column label has 3 classes (a, b, c)" in " ".join(w.value for w in at.warning)
    good = b"x,y,label\n" + b"".join(f"{x},{y},{'on' if x * y > 0 else 'off'}\n".encode()
                                     for x in (-2, -1, 1, 2) for y in (-2, -1, 1, 2))
    at.file_uploader(key="xor_csv").set_value(("good.csv", good, "text/csv"))
    at.run()
    assert not at.exception and not any("CSV" in w.value for w in at.warning)
    assert "16 points" in texts(at) and "class 0 = off, class 1 = on" in texts(at)
    assert _metric(at, "Epochs trained") == "500"
