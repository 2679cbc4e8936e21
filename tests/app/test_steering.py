"""The steering page, opened from app.py: moving the coefficient changes the steered text and the
numbers, coefficient 0 reproduces the unsteered text, bad pairs get a message, and a direction sent
from another page is offered. The mechanics run on a tiny model (no checkpoint needed); the ground
truth on the bundled model runs when its checkpoint is there."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.loading import BUNDLED_DIR
from tests.app.helpers import open_page, texts
from ui.common.handoff import KEY as HANDOFF_KEY
from ui.common.handoff import Direction

PAGE = "app_pages/steering.py"
PAIRS = "the cat is happy | the cat is sad\na dog is happy | a dog is sad\nMary is happy | Mary is sad"
DIGITS = " ".join(str(i % 10) for i in range(140))  # 279 characters, 140 tokens: past n_ctx = 128
needs_bundled = pytest.mark.skipif(  # only a missing checkpoint skips: any other load error fails
    not (BUNDLED_DIR / "model.safetensors").is_file(),
    reason="the bundled checkpoint is not built yet (python -m core.bundled.train)")


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
    assert "Coefficient 0 adds nothing" not in texts(at)  # the ground-truth box is for the bundled model only

    at.slider(key="steer_coef").set_value(4.0).run()
    assert "coefficient +4.0 at layer" in texts(at)
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
    assert at.slider(key="steer_layer").disabled


@needs_bundled
def test_bundled_ground_truth_steering_toward_positive_raises_positive_words():
    at = open_page(PAGE, query={"steer_concept": "sentiment", "steer_coef": "4.0"})
    assert at.success, texts(at)  # the verdict box: positive words up, negative words down
    verdict = str(at.success[0].value)
    assert "positive words" in verdict and "→" in verdict
    at.slider(key="steer_coef").set_value(-4.0).run()
    assert at.success and "toward negative words" in str(at.success[0].value)


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


def test_any_error_from_the_pairs_gets_a_message(tiny_model_dir, monkeypatch):
    import ui.steering.compute as compute

    def broken(*args, **kwargs):
        raise IndexError("index out of range in self")

    monkeypatch.setattr(compute, "steering_vector", broken)
    at, _ = _open(tiny_model_dir)
    assert not at.exception
    assert "could not be built from this input" in texts(at)
    assert "IndexError: index out of range in self" in texts(at)
    assert at.text_area(key="steer_pairs").value == PAIRS  # nothing typed is lost


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

    direction = Direction("probe: gender, layer 2", BUNDLED, "blocks.2.hook_resid_pre",
                          np.linspace(-1, 1, 128).astype(np.float32), "probe")
    at = open_page(PAGE, query={"steer_concept": "received: probe: gender, layer 2",
                                "steer_measure": "gender (female - male)"},
                   state={HANDOFF_KEY: {direction.name: direction}})
    assert at.selectbox(key="steer_measure").value == "gender"
    assert "female pronouns" in texts(at)
