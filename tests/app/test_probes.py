"""The probes page, opened from app.py. The mechanics (CSV upload, messages for bad files, the run
button, moving the layer) run on a tiny model; the ground truth (gender is not in the final token's
embedding but becomes readable later; removing a direction changes the pronoun) runs on the bundled
model when its checkpoint is there."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.models.loading import BUNDLED_DIR, ROOTS_ENV
from tests.app.helpers import open_page, texts
from ui.common.handoff import KEY as HANDOFF_KEY

PAGE = "app_pages/probes.py"


@pytest.fixture(autouse=True)
def model_roots(monkeypatch, tiny_model_dir):
    """Links may name the tiny models' folders (they are under this server's model roots)."""
    monkeypatch.setenv(ROOTS_ENV, str(tiny_model_dir("gpt2").parent))
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
    found = re.search(r"at (the embeddings|layer \d+)\*\* \((?:accuracy|R²) (-?[0-9.]+)\)", md)
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
    # a class too small is named at upload, before the run button (no model work for it)
    rows = [(f"the {n} sat {i}", "noun", n) for i, n in enumerate(NOUNS * 3)] + [
        ("the red mat", "rare", "red"), ("a red mat", "rare", "red")]
    _upload(at, _csv(rows))
    assert "Too few examples for a train/test split in class(es) 'rare' (2)" in texts(at)
    assert "probes_go" not in [b.key for b in at.button]


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
    # the lab's layers: the embeddings, then after each block, read at the convention's hook points
    assert list(table["layer"]) == ["embed", "0", "1"]
    assert list(table["hook point"]) == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post",
                                         "blocks.1.hook_resid_post"]
    layer, accuracy = _detail_header(at)
    held_out = np.asarray(table["held-out"])
    readable = np.flatnonzero(held_out >= 0.9)
    first = int(readable[0]) if len(readable) else int(held_out.argmax())  # where it becomes readable
    words = ["the embeddings", "layer 0", "layer 1"]
    assert layer == words[first] and accuracy == pytest.approx(held_out[first], abs=0.005)
    # a random-label control on seen word types is memorised from the embeddings at layer 0
    assert table["control"][0] > 0.6
    assert np.allclose(table["selectivity"], table["seen items"] - table["control"])

    at.select_slider(key="probes_layer").set_value(-1).run()
    layer0, accuracy0 = _detail_header(at)
    assert layer0 == "the embeddings" and accuracy0 == pytest.approx(table["held-out"][0], abs=0.005)
    assert "Embeddings (before layer 0): `blocks.0.hook_resid_pre`" in texts(at)  # under the diagram
    assert "The causal check is wired for" in texts(at)  # no behaviour for a CSV


@needs_bundled
def test_gender_ground_truth_on_the_bundled_model():
    at = open_page(PAGE, timeout=TIMEOUT)
    table = at.dataframe[0].value
    held_out = np.asarray(table["held-out"])
    assert table["layer"][0] == "embed" and held_out[0] < 0.65  # the final token's embedding: no gender
    assert held_out.max() > 0.9  # ...and a later layer knows, on names the probe never saw
    page = texts(at)
    assert "It becomes readable at **layer" in page
    assert "Which layer knows the character's gender" in page  # the question follows the dataset
    verdict = re.search(r"flips the model's choice on (\d+)% of prompts .*?against (\d+)% for a "
                        r"random direction.*?; so the model (does \*\*not\*\* rely|\*\*uses\*\*)", page)
    flipped, random_flipped = int(verdict.group(1)), int(verdict.group(2))
    # the details open at the same layer: each removal's score before and after
    moved = {name: (float(a), float(b)) for name, a, b in
             re.findall(r"- \*\*([a-z -]+)\*\*: (-?[0-9.]+) → (-?[0-9.]+) \(", page)}
    gone = {name: (a - b) / abs(a) for name, (a, b) in moved.items()}
    most = max(gone["probe weights"], gone["class-mean difference"])
    assert most > gone["random direction"], gone  # the probe's directions matter more than chance
    used = flipped - random_flipped >= 20 or (most >= 0.25 and most - gone["random direction"] >= 0.15)
    assert used == ("uses" in verdict.group(3)), (verdict.group(0), gone)
    page = page[:page.index("`core.interp.probes.probe`")]  # the lesson below quotes the old wording
    assert "-0%" not in page and "right side wins" not in page

    at.selectbox(key="probes_dataset").set_value("colour").run()
    assert not at.exception
    page = texts(at)
    assert "What each layer knows: Colour" in page and "which colour was named" in page
    assert "character's gender" not in page
    colour = at.dataframe[0].value
    assert colour["held-out"][0] > 0.95  # read at the colour word: the embedding is the answer
    assert abs(colour["selectivity"][0]) < 0.1  # ...and the control is just as easy
    assert f"Measured at the embeddings: held-out accuracy {colour['held-out'][0]:.2f}" in page


@needs_bundled
def test_send_to_steering_and_a_numeric_target():
    at = open_page(PAGE, query={"probes_layer": "2"}, timeout=TIMEOUT)
    assert _detail_header(at)[0] == "layer 2"
    at.button(key="probes_send").click().run()
    sent = list(at.session_state[HANDOFF_KEY].values())
    # layer 2 is the stream after block 2, in the name and in the hook the steering page adds to
    assert len(sent) == 1 and sent[0].hook_name == "blocks.2.hook_resid_post"
    assert sent[0].name == "probe: subject gender → male, layer 2 (probe weights)"
    assert sent[0].source == "probe" and np.linalg.norm(sent[0].vector) == pytest.approx(1.0, abs=1e-5)

    at.selectbox(key="probes_dataset").set_value("position").run()
    assert not at.exception
    _, r2 = _detail_header(at)
    assert r2 > 0.8  # learned position embeddings: the position is linearly readable
    captions = "\n".join(str(c.value) for c in at.caption)
    assert "Each point is a ridge regression probe" in captions and "logistic" not in captions
    kinds = at.selectbox(key="probes_send_kind")
    assert list(kinds.options) == ["probe weights (ridge regression)", "covariance with the value"]


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


@needs_bundled
def test_the_question_and_the_prediction_follow_the_dataset():
    at = open_page(PAGE, query={"probes_dataset": "Sentiment"}, timeout=TIMEOUT, predict=True)
    info = "\n".join(str(i.value) for i in at.info)
    assert "whether a feeling word is positive or negative" in info and "gender" not in info
    page = texts(at)
    assert ("At which layer does a probe on the residual stream first reach 90% held-out accuracy on "
            "**Sentiment**?") in page
    assert not at.dataframe  # the result waits for the prediction
    answer = at.selectbox(key="probes_predict_answer")
    assert list(answer.options) == ["the embeddings", "layer 0", "layer 1", "layer 2", "layer 3"]
    answer.set_value(-1)
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at)
    assert "**You predicted:** the embeddings (70% sure)" in page
    table = at.dataframe[0].value
    first = next((i for i, s in enumerate(table["held-out"]) if s >= 0.9), None)
    words = ["the embeddings", "layer 0", "layer 1", "layer 2", "layer 3"]
    measured = re.search(r"\*\*Measured:\*\* (.*?) first reaches 0\.90", page.replace("\\", ""))
    assert first is not None and measured.group(1) == words[first]
    mark = "right" if first == 0 else "not this time"
    assert mark in page


@needs_bundled
def test_a_link_brings_every_control_back_including_the_first_options():
    """Non-default values and zeros: layer 0 of the MLP output, and the embeddings on the stream."""
    query = {"probes_dataset": "Sentiment", "probes_site": "MLP output", "probes_position": "last token",
             "probes_n": "500", "probes_layer": "0", "probes_send_kind": "difference of class means"}
    at = open_page(PAGE, query=query, timeout=TIMEOUT)
    assert at.selectbox(key="probes_dataset").value == "sentiment"
    assert at.selectbox(key="probes_site").value == "mlp_out"
    assert at.selectbox(key="probes_position").value == "last"
    assert at.select_slider(key="probes_n").value == 500
    assert at.select_slider(key="probes_layer").value == 0
    assert _detail_header(at)[0] == "layer 0"
    assert "Read at `blocks.0.hook_mlp_out` (what the MLP of layer 0 writes)" in texts(at)
    table = at.dataframe[0].value
    assert list(table["hook point"]) == [f"blocks.{i}.hook_mlp_out" for i in range(4)]
    # the MLP output is not a point of the stream: steering would not add there, so nothing is sent
    assert "pick the residual stream as the hook site" in texts(at)
    at = open_page(PAGE, query={"probes_layer": "embed", "probes_send_kind": "difference of class means"},
                   timeout=TIMEOUT)
    assert at.select_slider(key="probes_layer").value == -1 and _detail_header(at)[0] == "the embeddings"
    assert at.selectbox(key="probes_send_kind").value == "means"


@pytest.mark.parametrize(("content", "message"), [
    (b"text,label\n" + b"the same row of text,a\n" * 4_000, "Every row of the file is the same row"),
    (b"text,label\n" + b"the same row of text,a\n" * 20_000, "more than 5,000 rows; the limit is 5,000"),
    (b"text,label\n" + b"x" * 9_000_000 + b",a\n", "The file is 9.0 MB; the limit is 8 MB"),
    (_csv([(f"the {n} sat", "noun", n) for n in NOUNS * 2] + [("y" * 1200, "adjective", "y")]),
     r"The text on line\(s\) 12 is longer than 1,000 characters"),
    (b"text,label\x00\nab,c\n", "NUL bytes"),
    (b"text,label\n\xff\xfe\xfa,x\n", "not UTF-8"),
    (b"text,label\nthe cat, sat,x\nb,y\n", "more fields than the header"),
])
def test_each_hostile_csv_is_refused_at_upload_with_a_message(csv_page, content, message):
    at = _upload(csv_page, content)
    assert re.search(message, texts(at)), texts(at)[-800:]
    assert "probes_go" not in [b.key for b in at.button] and not at.dataframe


def test_fuzz_random_bytes_and_strings_as_the_csv_upload(csv_page):
    """No upload ends in an exception element: random bytes, random CSV-ish strings, near misses."""
    from tests.unit.test_probes_csv import _random_inputs

    at = csv_page
    for i, raw in enumerate(_random_inputs(24, seed=7)):
        at = _upload(at, raw, name=f"fuzz{i}.csv")
        assert not at.exception, (raw[:80], [e.value for e in at.exception])


def test_fuzz_random_url_values_for_every_control(tiny_model_dir):
    import random

    rng = random.Random(3)
    junk = ["", "-1", "999", "1e308", "nan", "NaN", "embed", "x" * 300, "%00", "\u202e", "0", "Sentiment",
            "Your CSV (text, label, token)", "residual stream", "mean over tokens"]
    keys = ["probes_dataset", "probes_site", "probes_position", "probes_n", "probes_layer",
            "probes_send_kind", "probes_send_class"]
    for _ in range(4):
        query = {k: rng.choice(junk) for k in keys}
        query["model"] = str(tiny_model_dir("gpt2"))
        at = open_page(PAGE, query=query, timeout=TIMEOUT)  # open_page asserts no exception element
        assert "Probes" in texts(at)
