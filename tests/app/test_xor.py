"""The XOR page: it trains on open, retrains when a control moves, names failures and advises one
coherent next step, replays training, grades the learner's prediction, survives hostile CSVs, and a
link restores every control."""

from __future__ import annotations

import base64
import io
import random
import re

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from tests.app.helpers import open_page, texts


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _chart_frames(at) -> list[list]:
    """The data frames of every Altair chart on the page, in page order (the boundary chart first)."""
    return [[pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets]
            for chart in at.get("vega_lite_chart")]


def _picture(at) -> np.ndarray:
    """The decision-boundary picture as RGB pixels [rows, cols, 3]."""
    url = _chart_frames(at)[0][0]["url"][0]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _epoch_caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Epoch "))


def test_default_run_solves_xor_and_moving_a_control_retrains():
    at = open_page("app_pages/xor.py")
    assert _metric(at, "Accuracy") == "100%"
    assert "Solved: 100% of points right" in texts(at)
    loss_before = float(_metric(at, "Final loss"))
    assert loss_before < 0.05
    heat_before = _picture(at).astype(int)  # p over the 60 x 60 grid, as colours
    p_before = _chart_frames(at)[0][1]["p"].to_numpy()  # p at the four points
    at.slider(key="xor_units1").set_value(1).run()
    assert not at.exception
    heat_after = _picture(at).astype(int)
    assert heat_before.shape == heat_after.shape == (60, 60, 3)
    assert np.abs(heat_before - heat_after).max() > 60
    assert np.abs(p_before - _chart_frames(at)[0][1]["p"].to_numpy()).max() > 0.3
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


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_predict_then_run_hides_the_run_until_a_prediction_is_locked_and_grades_it():
    at = open_page("app_pages/xor.py", predict=True)
    assert "What will a 2-2-1 tanh net" in texts(at)
    assert not at.metric and not [s for s in at.subheader if s.value == "Watch it train"]
    at.radio(key="xor_predict_answer").set_value("Gets stuck")
    at.text_input(key="xor_predict_why").input("two units are too few")
    _button(at, "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")  # the graded texts are markdown-escaped
    assert "**You predicted:** Gets stuck (70% sure)" in shown and "two units are too few" in shown
    assert "solved (100% of points right after 500 epochs)" in shown and "not this time" in shown
    assert _metric(at, "Accuracy") == "100%"
    at.slider(key="xor_units1").set_value(3).run()  # a new setup asks for a new prediction
    assert "You predicted" not in texts(at) and not at.metric
    at.radio(key="xor_predict_answer").set_value("Solves it")
    _button(at, "Lock my prediction").click().run()
    assert "**You predicted:** Solves it" in texts(at) and ":material/check: right" in texts(at)


def test_advice_is_one_direction_for_the_learning_rate_and_computed_from_the_run():
    # ReLU, lr 1 (the audit's run): seed 0 has a unit dead from the first epoch, seed 1 kills both in training
    cases = (("0", "another seed (now 0) or more hidden units"), ("1", "a smaller learning rate"))
    for seed, expected in cases:
        at = open_page("app_pages/xor.py", query={"xor_act": "ReLU", "xor_lr": "1", "xor_seed": seed})
        verdict = " ".join(b.value for kind in ("success", "info", "warning", "error")
                           for b in getattr(at, kind))
        advice = [i.value for i in at.info if i.value.startswith("**What to try next:**")]
        assert len(advice) == 1 and expected in advice[0], advice
        assert not ("smaller learning rate" in verdict and "larger learning rate" in verdict)
    assert "learning rate played no part" in open_page(
        "app_pages/xor.py", query={"xor_act": "ReLU", "xor_lr": "1"}).info[-1].value


def test_a_cut_run_says_what_was_cut_and_advises_larger_batches_not_more_epochs():
    at = open_page("app_pages/xor.py", query={"xor_data": "Spirals", "xor_batch": "1", "xor_units1": "4"})
    shown = texts(at)
    assert "this run trains 150 epochs instead of 500" in shown  # the caption above the run
    assert "150 epochs (cut from 500)" in shown
    assert "the page stopped it at epoch 150 of the 500 asked for" in shown
    advice = next(i.value for i in at.info if i.value.startswith("**What to try next:**"))
    assert "batches of at least 4 (now 1), so that all 500 epochs fit" in advice
    assert "more epochs" not in advice.lower()


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


def _upload(data: bytes):
    at = open_page("app_pages/xor.py", query={"xor_data": "Your own CSV"})
    at.file_uploader(key="xor_csv").set_value(("mine.csv", data, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_field_longer_than_the_csv_module_allows_gets_a_message():
    at = _upload(b"x,y,label\n1,2," + b"a" * 200_000 + b"\n3,4,b\n")
    warning = " ".join(w.value for w in at.warning)
    assert "This CSV cannot be used. Line 2 cannot be read as CSV" in warning and "131072" in warning
    at = _upload(b"x,y,label\n1,2," + b"a" * 500 + b"\n3,4,b\n")
    assert "Line 2 has a cell of 500 characters" in " ".join(w.value for w in at.warning)


def test_coordinates_near_the_largest_float_are_rescaled_not_zeroed():
    rows = "".join(f"{sx}1e308,{sy}1e308,{'a' if sx == sy else 'b'}\n" for sx in "+-" for sy in "+-")
    at = _upload(("x,y,label\n" + rows + "0,0,a\n").encode())
    assert "x [-1e+308, 1e+308], y [-1e+308, 1e+308] rescaled to [-1, 1]" in texts(at)
    points = _chart_frames(at)[0][1]
    assert sorted(set(points["x1"].round(9))) == [-1.0, 0.0, 1.0]  # not every x turned into 0
    assert _metric(at, "Epochs trained") == "500"


def test_random_bytes_and_strings_as_the_csv_never_raise():
    rng = random.Random(13)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(6)]
    alphabet = "xyl,abel\n\r\t\"'0123456789.e+-;é🦄\x00 "
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 300))).encode()
                for _ in range(6)]
    odd = ["nan", "inf", "1e999", "2"]
    samples += [b"x,y,label\n" + "".join(f"{rng.uniform(-1e6, 1e6)},{rng.choice(odd)},{rng.choice('ab')}\n"
                                        for _ in range(20)).encode()]
    at = open_page("app_pages/xor.py", query={"xor_data": "Your own CSV"})
    for data in samples:
        at.file_uploader(key="xor_csv").set_value(("fuzz.csv", data, "text/csv"))
        at.run()
        assert not at.exception, (data[:80], [e.value for e in at.exception])
        assert at.warning or at.metric  # a message, or a run on what was readable


LINK = {"xor_data": "Circles", "xor_noise": "0.0", "xor_layers": "2", "xor_units1": "5", "xor_units2": "3",
        "xor_act": "sigmoid", "xor_loss": "squared error", "xor_init": "He", "xor_opt": "Momentum",
        "xor_lr": "0.3", "xor_batch": "8", "xor_epochs": "200", "xor_seed": "7",
        "xor_traj_layer": "layer 2 (W2, b2)", "xor_example_no": "12"}


@pytest.mark.parametrize("changed", [{}, {"xor_seed": "0", "xor_traj_layer": "layer 1 (W1, b1)"}])
def test_a_link_restores_every_control_including_zeros(changed):
    at = open_page("app_pages/xor.py", query={**LINK, **changed})
    query = {**LINK, **changed}
    assert at.selectbox(key="xor_data").value == "circles"
    assert at.slider(key="xor_noise").value == 0.0
    assert at.slider(key="xor_layers").value == 2
    assert (at.slider(key="xor_units1").value, at.slider(key="xor_units2").value) == (5, 3)
    assert at.segmented_control(key="xor_act").value == "sigmoid"
    assert at.segmented_control(key="xor_loss").value == "mse"
    assert at.selectbox(key="xor_init").value == "he"
    assert at.segmented_control(key="xor_opt").value == "momentum"
    assert at.select_slider(key="xor_lr").value == 0.3
    assert at.select_slider(key="xor_batch").value == 8
    assert at.select_slider(key="xor_epochs").value == 200
    assert at.number_input(key="xor_seed").value == int(query["xor_seed"])
    assert at.segmented_control(key="xor_traj_layer").value == int(query["xor_traj_layer"][6])
    assert at.number_input(key="xor_example_no").value == 12
    assert "a 2-5-3-1 sigmoid net, squared error, He init, Momentum lr 0.3, batches of 8, 200 epochs, seed " \
           f"{query['xor_seed']}, on Circles" in texts(at)


def test_random_url_values_never_raise():
    rng = random.Random(29)
    junk = ["", "-1", "0", "999", "nan", "inf", "1e309", "🦄", "\x00", "z" * 300, "ReLU", "full", "0.05"]
    for _ in range(5):
        query = {key: rng.choice(junk) for key in LINK}
        at = open_page("app_pages/xor.py", query=query)
        assert not at.exception, query
        assert at.metric or at.info  # a run, or "pick a dataset"
