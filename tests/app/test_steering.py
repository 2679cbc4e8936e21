"""The steering page, opened from app.py: moving the coefficient changes the steered text and the
numbers, coefficient 0 reproduces the unsteered text, bad pairs get a message, a direction sent from
another page is offered and measured on its own concept, "layer L" is the stream after block L (old
links translated), and the prediction step hides the result until it is locked, then grades it. The
mechanics run on a tiny model (no checkpoint needed); the ground truth on the bundled model runs when
its checkpoint is there."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.models.loading import BUNDLED_DIR, ROOTS_ENV
from tests.app.helpers import open_page, texts
from ui.common.handoff import KEY as HANDOFF_KEY
from ui.common.handoff import Direction

PAGE = "app_pages/steering.py"
PAIRS = "the cat is happy | the cat is sad\na dog is happy | a dog is sad\nMary is happy | Mary is sad"
DIGITS = " ".join(str(i % 10) for i in range(140))  # 279 characters, 140 tokens: past n_ctx = 128
needs_bundled = pytest.mark.skipif(  # only a missing checkpoint skips: any other load error fails
    not (BUNDLED_DIR / "model.safetensors").is_file(),
    reason="the bundled checkpoint is not built yet (python -m core.bundled.train)")


@pytest.fixture(autouse=True)
def model_roots(monkeypatch, tiny_model_dir):
    """The tiny models' folder is one of this server's model roots (links may name models in it)."""
    monkeypatch.setenv(ROOTS_ENV, str(tiny_model_dir("gpt2").parent))


def _open(tiny_model_dir, **query):
    folder = str(tiny_model_dir("gpt2"))
    q = {"model": folder, "steer_pairs": PAIRS, "steer_prompt": "the cat sat on the mat .",
         "steer_temp": "0.0", **query}
    return open_page(PAGE, query=q), folder


def _cards(at) -> tuple[str, str]:
    """(unsteered, steered) continuation markdown, found by the card titles."""
    md = [str(m.value) for m in at.markdown]
    plain = md[md.index("**Unsteered**") + 1]
    steered = md[next(i for i, m in enumerate(md) if m.startswith("**Steered**")) + 1]
    return plain, steered


def _metric(at, label_start: str):
    return next(m for m in at.metric if m.label.startswith(label_start))


def test_moving_the_coefficient_changes_the_steered_text_and_the_numbers(tiny_model_dir):
    at, _ = _open(tiny_model_dir, steer_coef="12.0")
    plain, steered = _cards(at)
    strong = _metric(at, "P(+ words)").value
    assert steered != plain  # a push of 12x the mean difference changes greedy text on this model

    at.slider(key="steer_coef").set_value(0.0).run()
    assert not at.exception
    plain0, steered0 = _cards(at)
    assert steered0 == plain0 == plain  # coefficient 0: the steered text is the unsteered text
    assert _metric(at, "P(+ words)").delta == "+0.0 pts"
    # the verdict is computed from the result on every model now (it was a bundled-only box)
    assert "Coefficient 0 adds nothing" in texts(at) and "They are identical" in texts(at)

    at.slider(key="steer_coef").set_value(4.0).run()
    assert "coefficient +4.0 at layer 0, every position" in texts(at)  # 2 layers: the default is 0
    mid = _metric(at, "P(+ words)")
    assert mid.value != strong and mid.delta.startswith("+")  # toward "happy" raises P(happy)
    assert float(mid.value.rstrip("%")) < float(strong.rstrip("%"))


def test_bad_pairs_get_a_message_and_nothing_is_lost(tiny_model_dir):
    at, _ = _open(tiny_model_dir, steer_pairs="the cat is happy the cat is sad")
    shown = texts(at)
    assert "needs one '|'" in shown and "Type at least one contrast pair" in shown
    assert at.text_area(key="steer_pairs").value == "the cat is happy the cat is sad"
    at.text_area(key="steer_pairs").set_value(PAIRS).run()
    assert not at.exception and "**Unsteered**" in [m.value for m in at.markdown]


def test_a_direction_sent_from_another_page_is_offered(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    direction = Direction("probe: happy, layer 1", folder, "blocks.1.hook_resid_post",
                          np.linspace(-1, 1, 32).astype(np.float32), "probe")
    at = open_page(PAGE, query={"model": folder, "steer_pairs": PAIRS,
                                "steer_prompt": "the cat sat on the mat ."},
                   state={HANDOFF_KEY: {direction.name: direction}})
    at.selectbox(key="steer_concept").set_value("received: probe: happy, layer 1").run()
    assert not at.exception
    shown = texts(at)
    assert "blocks.1.hook_resid_post" in shown and "no layer to sweep" in shown
    layer = next(w for w in at.select_slider if w.label == "Layer")
    assert layer.disabled and layer.value == 1  # the direction's own layer, shown, not chosen
    assert "coefficient +3.0 at layer 1, every position" in shown


@needs_bundled
def test_bundled_defaults_steer_with_fluent_text_and_a_hard_push_is_word_salad():
    at = open_page(PAGE)
    assert at.success, texts(at)  # the verdict at the defaults: positive words up, text fluent
    verdict = str(at.success[0].value)
    assert verdict.startswith("**It steers, and the text stays fluent.**")
    assert "Steering toward positive words (layer 2, coefficient +3.0)" in verdict
    assert re.search(r"random directions of the same norm moved it at most \*\*\d+\.\d points", verdict)
    assert "After layer 2: `blocks.2.hook_resid_post`" in texts(at)  # the diagram's caption
    at.slider(key="steer_coef").set_value(8.0).run()
    assert not at.success
    assert any(str(w.value).startswith("**It moves the concept, but the text breaks down.**")
               for w in at.warning), texts(at)


def test_on_a_bigger_model_the_layer_sweep_waits_for_its_button(tiny_model_dir, monkeypatch):
    import ui.steering.compute as compute

    monkeypatch.setattr(compute, "AUTO_SWEEP_PARAMS", 0)  # treat the tiny model as a big one
    at, _ = _open(tiny_model_dir)
    assert "Each row builds its own" not in texts(at)
    n_charts = len(at.get("vega_lite_chart"))
    at.button(key="steer_sweep_button").click().run()
    assert not at.exception
    assert "Each row builds its own" in texts(at)
    assert len(at.get("vega_lite_chart")) == n_charts + 1
    at.slider(key="steer_coef").set_value(2.0).run()  # the map stays once computed
    assert "Each row builds its own" in texts(at)



@needs_bundled
def test_a_279_character_pair_of_digits_steers_instead_of_crashing():
    """This pair once raised IndexError (positions past the context window); now both sides are cut
    to the window, and a pair that differs only after the cut gets a message."""
    early = f"{DIGITS} | {DIGITS[:100]}7{DIGITS[101:]}"
    at = open_page(PAGE, query={"steer_concept": "pairs I type", "steer_pairs": early,
                                "steer_temp": "0.0"})
    assert "**Unsteered**" in [m.value for m in at.markdown], texts(at)
    assert "P(+ words) next" in [m.label for m in at.metric]
    at.text_area(key="steer_pairs").set_value(f"{DIGITS} | {DIGITS[:-1]}0").run()
    assert not at.exception
    assert "differ only after it" in texts(at) and "context window of 128 tokens" in texts(at)
    assert "**Unsteered**" not in [m.value for m in at.markdown]


def test_any_error_from_the_pairs_gets_a_message(tiny_model_dir, monkeypatch, caplog):
    """An unexpected error gets a generic, actionable message (its text is for the server log, not
    the visitor), and the page keeps running."""
    import logging

    import ui.steering.compute as compute

    def broken(*args, **kwargs):
        raise IndexError("index out of range in self")

    monkeypatch.setattr(compute, "steering_vector", broken)
    with caplog.at_level(logging.ERROR):
        at, _ = _open(tiny_model_dir)
    assert not at.exception
    shown = texts(at)
    assert "could not be built from this input" in shown and "Try shorter contrast pairs" in shown
    assert "index out of range" not in shown and "IndexError" not in shown  # no internals on the page
    assert "**Unsteered**" not in [m.value for m in at.markdown]  # the page ended after the message
    assert at.text_area(key="steer_pairs").value == PAIRS  # nothing typed is lost
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is IndexError]
    assert logged and "steering vector failed" in logged[0].getMessage()  # the server log has it


def test_steer_from_survives_prompt_edits_and_is_clamped_to_the_prompt(tiny_model_dir):
    """The slider's range no longer follows the prompt, so editing the prompt keeps its value (and
    URL parameter); past the prompt's end, steering starts at the first new token, and the page
    says so."""
    at, _ = _open(tiny_model_dir)
    slider = at.slider(key="steer_from")
    assert slider.max == 31  # n_ctx - 1 of the tiny model
    slider.set_value(6).run()
    assert "position 6 on" in texts(at) and "steering starts at" not in texts(at)
    at.text_area(key="steer_prompt").set_value("the cat sat on the mat and the dog sat .").run()
    assert at.slider(key="steer_from").value == 6 and "position 6 on" in texts(at)
    at.text_area(key="steer_prompt").set_value("the cat").run()  # BOS + 2 tokens
    assert at.slider(key="steer_from").value == 6
    shown = texts(at)
    assert "The prompt has 3 tokens, so steering starts at position 3" in shown
    assert "position 3 on" in shown and "position 6 on" not in shown


def test_the_pairs_box_is_bounded(tiny_model_dir):
    """The pairs live in the URL, so the box holds at most 2,000 characters; a longer link is cut
    and the page says so."""
    long = "\n".join([PAIRS] * 40)
    assert len(long) > 2000
    at, _ = _open(tiny_model_dir, steer_pairs=long)
    assert not at.exception
    assert len(at.text_area(key="steer_pairs").value) == 2000
    assert "the box is full (it holds at most 2,000 characters" in texts(at)
    at.text_area(key="steer_pairs").set_value(PAIRS).run()
    assert "the box is full" not in texts(at)


def test_a_direction_keeps_its_own_layer(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    direction = Direction("probe: x, layer 0", folder, "blocks.0.hook_resid_post",
                          np.linspace(-1, 1, 32).astype(np.float32), "probe")
    at = open_page(PAGE, query={"model": folder, "steer_pairs": PAIRS, "steer_layer": "1",
                                "steer_prompt": "the cat sat on the mat ."},
                   state={HANDOFF_KEY: {direction.name: direction}})
    at.selectbox(key="steer_concept").set_value("received: probe: x, layer 0").run()
    assert not at.exception
    assert "at layer 0, every position" in texts(at)


@needs_bundled
def test_the_measured_concept_of_a_received_direction_is_in_the_url():
    from core.models import BUNDLED

    direction = Direction("probe: something, layer 2", BUNDLED, "blocks.2.hook_resid_pre",
                          np.linspace(-1, 1, 128).astype(np.float32), "probe")
    at = open_page(PAGE, query={"steer_concept": "received: probe: something, layer 2",
                                "steer_measure": "gender (female - male)"},
                   state={HANDOFF_KEY: {direction.name: direction}})
    assert at.selectbox(key="steer_measure").value == "gender"
    assert "female pronouns" in texts(at)


@needs_bundled
def test_a_probe_direction_is_measured_on_its_own_concept_with_one_layer_number():
    """The audit's case: "probe: subject gender → male" was measured on sentiment, and one screen
    showed three layer numbers. Now it is measured on gender, male pronouns on the + side, and the
    layer (the stream after block 2, where the probe read it) is said one way everywhere."""
    from core.models import BUNDLED

    name = "probe: subject gender → male, layer 2 (probe weights)"
    direction = Direction(name, BUNDLED, "blocks.2.hook_resid_post",
                          np.linspace(-1, 1, 128).astype(np.float32), "probe")
    at = open_page(PAGE, query={"steer_concept": "received: " + name},
                   state={HANDOFF_KEY: {direction.name: direction}})
    assert at.selectbox(key="steer_measure").value == "gender"
    shown = texts(at)
    assert "P(male pronouns) next" in [m.label for m in at.metric]
    assert "steered where it was found, at layer 2" in shown
    assert "After layer 2: `blocks.2.hook_resid_post`" in shown
    assert "coefficient +3.0 at layer 2, every position" in shown
    layers = set(re.findall(r"(?<!before )layer (\d)", shown))  # "before layer 0": the embeddings
    assert layers == {"2"}, layers
    at.selectbox(key="steer_measure").set_value("sentiment").run()  # another concept: its own contrast
    assert "P(positive words) next" in [m.label for m in at.metric]


def test_an_old_link_layer_is_translated_to_the_stream_convention(tiny_model_dir):
    """steer_layer=1 meant blocks.1.hook_resid_pre: the stream after block 0, now "layer 0"."""
    at, _ = _open(tiny_model_dir, steer_layer="1")
    assert at.select_slider(key="steer_at").value == 0
    assert "steer_layer" not in at.query_params
    assert "After layer 0: `blocks.0.hook_resid_post`" in texts(at)
    at, _ = _open(tiny_model_dir, steer_layer="0")
    assert at.select_slider(key="steer_at").value == -1  # the embeddings
    assert "coefficient +3.0 at the embeddings" in texts(at)
    at, _ = _open(tiny_model_dir, steer_layer="0", steer_at="1")  # a new key wins over the old
    assert at.select_slider(key="steer_at").value == 1


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_prediction_hides_the_result_until_locked_then_grades_it(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    query = {"model": folder, "steer_pairs": PAIRS, "steer_coef": "12.0",
             "steer_prompt": "the cat sat on the mat .", "steer_temp": "0.0"}
    at = open_page(PAGE, predict=True, query=query)
    shown = texts(at)
    assert "will the steered text use more, as many, or fewer words like happy" in shown
    assert "**Unsteered**" not in [m.value for m in at.markdown]  # the result waits
    at.radio(key="steer_predict_answer").set_value("More")
    at.text_input(key="steer_predict_why").input("the push is huge")
    _button(at, "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** More (70% sure)" in shown and "the push is huge" in shown
    measured = re.search(r"\*\*Measured:\*\* (more|as many|fewer): (\d+) \+ words in the steered text, "
                         r"(\d+) in the unsteered one", shown)
    assert measured, shown
    word, steered, plain = measured.group(1), int(measured.group(2)), int(measured.group(3))
    assert word == ("more" if steered > plain else "fewer" if steered < plain else "as many")
    assert (":material/check: right" in shown) == (word == "more")
    assert "**Unsteered**" in [m.value for m in at.markdown]  # now the result is shown
    _, steered_card = _cards(at)
    assert steered_card.count(":green-background[") == steered  # the grade counts what the card shows


def test_a_prompt_that_fills_the_context_window_leaves_no_text_to_judge(tiny_model_dir):
    long = " ".join(["the cat sat on the mat ."] * 8)  # 48 tokens: cut to the 32 of the window
    at, _ = _open(tiny_model_dir, steer_prompt=long, steer_coef="12.0")
    shown = texts(at)
    assert "**No new text**: the prompt fills the model's context window" in shown
    assert "breaks down" not in shown and "It steers" not in shown and "They are identical" not in shown
    assert "Neither text has a new token" in shown
