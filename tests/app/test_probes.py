"""The probes page, opened from app.py. The mechanics (CSV upload, messages for bad files, the run
button, moving the layer) run on a tiny model; the ground truth (gender is not in the final token's
embedding but becomes readable later; removing a direction changes the pronoun) runs on the bundled
model when its checkpoint is there."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.models.loading import BUNDLED_DIR
from tests.app.helpers import open_page, texts
from ui.common.handoff import KEY as HANDOFF_KEY

PAGE = "app_pages/probes.py"
CSV_LABEL = "Your CSV (text, label, token)"  # bound widgets keep their shown label in the URL
TIMEOUT = 240
needs_bundled = pytest.mark.skipif(not (BUNDLED_DIR / "model.safetensors").is_file(),
                                   reason="the bundled checkpoint is not built yet")
NOUNS = ["cat", "dog", "mat", "park", "home"]
ADJECTIVES = ["red", "blue", "happy", "sad", "big", "small"]


def _csv(rows: list[tuple[str, str, str]]) -> bytes:
    return ("text,label,token\n" + "\n".join(",".join(r) for r in rows) + "\n").encode()


def _good_csv() -> bytes:
    rows = []
    for i, noun in enumerate(NOUNS * 4):
        adjective = ADJECTIVES[i % len(ADJECTIVES)]
        rows.append((f"the {noun} is {adjective}", "noun", noun))
        rows.append((f"a {adjective} {noun} sat", "adjective", adjective))
    return _csv(rows)


def _upload(at, content: bytes, name: str = "mine.csv"):
    at.file_uploader(key="probes_csv").set_value((name, content, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _detail_header(at) -> tuple[str, float]:
    md = next(str(m.value) for m in at.markdown if str(m.value).startswith("**Held-out predictions"))
    found = re.search(r"at layer (.+?)\*\* \((?:accuracy|R²) (-?[0-9.]+)\)", md)
    return found.group(1), float(found.group(2))


@pytest.fixture
def csv_page(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    return open_page(PAGE, query={"model": folder, "probes_dataset": CSV_LABEL}, timeout=TIMEOUT)


def test_bad_csvs_get_messages_and_the_page_keeps_working(csv_page):
    at = csv_page
    assert "Upload a CSV" in texts(at)
    _upload(at, _csv([("the cat sat", "x", "cat"), ("a dog ran", "x", "dog")]))
    assert "Every row has the label 'x'" in texts(at)
    _upload(at, b"text,label\nthe cat sat,x\n,y\n")
    assert "Empty text on line(s) 3" in texts(at)
    _upload(at, b"text,label\nthe cat sat,x\nthe dog sat,\n")
    assert "Missing label on line(s) 3" in texts(at)
    _upload(at, b"words,label\nthe cat sat,x\n")
    assert "needs columns named `text` and `label`" in texts(at)
    rows = [(f"the {n} sat", "noun", n) for n in NOUNS * 3] + [("the red mat", "rare", "red")] * 2
    _upload(at, _csv(rows))
    at.button(key="probes_go").click().run()
    assert not at.exception
    assert "Too few examples for a train/test split in class(es) 'rare' (2)" in texts(at)


def test_infinite_labels_and_twice_named_columns_get_messages(csv_page):
    """A number label like 1e999 is infinite (scikit-learn would raise), and `Text,text` would make
    df["text"] a frame: both are refused with a message, and a good file works again after."""
    rows = [(f"the {noun} sat", str(i), noun) for i, noun in enumerate(NOUNS * 3)]  # 15 numbers
    rows[4] = ("the home sat", "1e999", "home")
    at = _upload(csv_page, _csv(rows))
    assert "The label on line(s) 6 is infinite or too big ('1e999')" in texts(at)
    assert not at.dataframe and "probes_go" not in [b.key for b in at.button]
    _upload(at, b"Text,text,label\nthe cat sat,the cat,x\nthe dog sat,the dog,y\n")
    assert "more than one column named `text`" in texts(at)
    _upload(at, _good_csv())
    assert "40 rows, 2 classes" in texts(at) and "more than one column" not in texts(at)


def test_a_fit_that_scikit_learn_refuses_gets_a_message(csv_page, monkeypatch):
    import ui.probes.compute as run

    def refuse(*args, **kwargs):
        raise ValueError("Input y contains infinity or a value too large for dtype('float64').")

    monkeypatch.setattr(run, "report", refuse)
    at = _upload(csv_page, _good_csv())
    at.button(key="probes_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "The probes could not be fitted on this data: Input y contains infinity" in texts(at)


def test_csv_probe_runs_on_click_and_the_layer_control_changes_the_details(csv_page):
    at = _upload(csv_page, _good_csv())
    assert "40 rows, 2 classes" in texts(at)
    assert not at.dataframe  # nothing computed before the click
    at.button(key="probes_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["0 (embed)", "1", "2"]
    layer, accuracy = _detail_header(at)
    held_out = np.asarray(table["held-out"])
    readable = np.flatnonzero(held_out >= 0.9)
    first = int(readable[0]) if len(readable) else int(held_out.argmax())  # where it becomes readable
    assert layer == str(table["layer"][first]) and accuracy == pytest.approx(held_out[first], abs=0.005)
    # a random-label control on seen word types is memorised from the embeddings at layer 0
    assert table["control"][0] > 0.6
    assert np.allclose(table["selectivity"], table["seen items"] - table["control"])

    at.select_slider(key="probes_layer").set_value(0).run()
    layer0, accuracy0 = _detail_header(at)
    assert layer0 == "0 (embed)" and accuracy0 == pytest.approx(table["held-out"][0], abs=0.005)
    assert "The causal check is wired for" in texts(at)  # no behaviour for a CSV


@needs_bundled
def test_gender_ground_truth_on_the_bundled_model():
    at = open_page(PAGE, timeout=TIMEOUT)
    table = at.dataframe[0].value
    held_out = np.asarray(table["held-out"])
    assert held_out[0] < 0.65  # the final token's embedding knows nothing about the name
    assert held_out.max() > 0.9  # ...and a later layer does, on names the probe never saw
    page = texts(at)
    assert "It becomes readable at layer" in page
    verdict = re.search(r"flips the model's choice on (\d+)% of prompts .*?against (\d+)% for a "
                        r"random direction.*?; so the model (does \*\*not\*\* rely|\*\*uses\*\*)", page)
    flipped, random_flipped = int(verdict.group(1)), int(verdict.group(2))
    # the details open at the same layer: what each removal cost, in % of the effect
    gone = {name: int(pct) for name, pct in
            re.findall(r"\*\*([a-z -]+) removed\*\*: \S+ → \S+ \((-?\d+)% of the effect gone", page)}
    most = max(gone["probe weights"], gone["class-mean difference"])
    assert most > gone["random direction"], gone  # the probe's directions matter more than chance
    used = flipped - random_flipped >= 20 or (most >= 25 and most - gone["random direction"] >= 15)
    assert used == ("uses" in verdict.group(3)), (verdict.group(0), gone)

    at.selectbox(key="probes_dataset").set_value("colour").run()
    assert not at.exception
    assert "What each layer knows: Colour" in texts(at)
    colour = at.dataframe[0].value
    assert colour["held-out"][0] > 0.95  # read at the colour word: the embedding is the answer
    assert abs(colour["selectivity"][0]) < 0.1  # ...and the control is just as easy


@needs_bundled
def test_send_to_steering_and_a_numeric_target():
    at = open_page(PAGE, query={"probes_layer": "2"}, timeout=TIMEOUT)
    at.button(key="probes_send").click().run()
    sent = list(at.session_state[HANDOFF_KEY].values())
    assert len(sent) == 1 and sent[0].hook_name == "blocks.2.hook_resid_pre"
    assert sent[0].source == "probe" and "→ male" in sent[0].name
    assert np.linalg.norm(sent[0].vector) == pytest.approx(1.0, abs=1e-5)

    at.selectbox(key="probes_dataset").set_value("position").run()
    assert not at.exception
    _, r2 = _detail_header(at)
    assert r2 > 0.8  # learned position embeddings: the position is linearly readable


def test_bundled_sentences_on_another_model_warn_and_wait_for_the_button(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "probes_n": "200"},
                   timeout=TIMEOUT)
    assert "does not know some words of these sentences" in texts(at)
    assert not at.dataframe and at.button(key="probes_go").label == "Run the probes"
    at.button(key="probes_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == 3 and table["held-out"].between(0, 1).all()
    assert "The answer key" not in texts(at)  # the ground truth is for the bundled model only
