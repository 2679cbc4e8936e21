import random

import pyarrow as pa

from tests.app.helpers import open_page, texts


def test_bundled_model_page_shows_report_samples_and_generation():
    at = open_page("app_pages/bundled_model.py")
    shown = texts(at)
    assert "Mary, Anna" in at.dataframe[0].value.to_string()  # ground-truth groups
    assert "IOI" in at.dataframe[1].value.to_string()  # the evaluation table
    # greedy answer: the indirect object, highlighted after the prompt
    assert "gave a drink to :blue-background[Mary" in shown
    before = [c.value for c in at.code]
    at.selectbox(key="bm_family").set_value("arithmetic").run()
    assert not at.exception
    after = [c.value for c in at.code]
    assert after != before and any("=" in text for text in after)


def _with_prompt(text: str):
    at = open_page("app_pages/bundled_model.py")
    at.text_area(key="bm_prompt").set_value(text).run()
    assert not at.exception
    return at


def test_an_empty_prompt_asks_for_one_and_keeps_the_page():
    at = _with_prompt("   ")
    assert "the box is empty" in texts(at)
    assert at.text_area(key="bm_prompt").value == "   "  # what the learner typed is kept
    assert "IOI" in at.dataframe[1].value.to_string()  # the rest of the page still renders


def test_unknown_words_are_named_in_a_warning():
    at = _with_prompt("Mary saw a 🦄 zebra at the park")
    warning = " ".join(w.value for w in at.warning)
    assert "never seen" in warning and "zebra" in warning and "🦄" in warning


def test_an_over_long_prompt_is_truncated_with_a_note():
    at = _with_prompt(" ".join(["Mary went to the park ."] * 40))
    assert "cut to the model's context window of 128 tokens" in texts(at)


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_limits_wait_for_a_prediction_that_is_then_graded_on_the_report():
    at = open_page("app_pages/bundled_model.py", predict=True)
    assert "which of these will it get right least often" in texts(at)
    assert not any("accuracy" in d.value.columns for d in at.dataframe)  # the limits table waits
    at.radio(key="bm_predict_answer").set_value("Words it never saw")
    _button(at, "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** Words it never saw" in shown
    assert "words it never saw is worst, 4% right" in shown and ":material/check: right" in shown
    limits = next(d.value for d in at.dataframe if "accuracy" in d.value.columns)
    assert "4.0%" in limits.to_string()


def test_the_heads_chart_outlines_what_its_caption_says():
    at = open_page("app_pages/bundled_model.py")
    frames = [pa.ipc.open_stream(c.proto.data.data).read_all().to_pandas() if c.proto.data.data else None
              for c in at.get("vega_lite_chart")]
    frames += [pa.ipc.open_stream(d.data.data).read_all().to_pandas()
               for c in at.get("vega_lite_chart") for d in c.proto.datasets]
    frame = next(f for f in frames if f is not None and "marked" in f.columns)
    assert (frame["marked"] == (frame["score"] >= 0.5)).all()
    n = int(frame["marked"].sum())
    assert f"the {n} outlined cells score at least 0.5 in their panel" in texts(at)


def test_a_link_restores_every_control_including_zeros():
    query = {"bm_family": "arithmetic", "bm_seed": "0", "bm_temp": "0.0", "bm_new": "7", "bm_gen_seed": "3",
             "bm_prompt": "Mary went to the park"}
    at = open_page("app_pages/bundled_model.py", query=query)
    assert at.selectbox(key="bm_family").value == "arithmetic"
    assert at.number_input(key="bm_seed").value == 0 and at.number_input(key="bm_gen_seed").value == 3
    assert at.slider(key="bm_temp").value == 0.0 and at.slider(key="bm_new").value == 7
    assert at.text_area(key="bm_prompt").value == "Mary went to the park"
    query.update(bm_seed="5", bm_temp="1.3", bm_family="ioi")
    at = open_page("app_pages/bundled_model.py", query=query)
    assert (at.number_input(key="bm_seed").value, at.slider(key="bm_temp").value) == (5, 1.3)
    assert at.selectbox(key="bm_family").value == "ioi"


def test_random_url_values_never_raise():
    rng = random.Random(7)
    junk = ["", "-1", "99999", "nan", "inf", "1e309", "🦄", "\x00", "x" * 300, "arithmetic", "0.5"]
    for _ in range(4):
        query = {k: rng.choice(junk) for k in ("bm_family", "bm_seed", "bm_temp", "bm_new", "bm_gen_seed",
                                                "bm_prompt")}
        at = open_page("app_pages/bundled_model.py", query=query)
        assert not at.exception, query


def test_the_continuation_is_sampled_once_per_setting(monkeypatch):
    from core.models.hooked_lm import HookedLM
    from ui.bundled_model.compute import continuation

    continuation.clear()
    calls = []
    real = HookedLM.generate

    def counted(self, prompt, **kwargs):
        calls.append(kwargs)
        return real(self, prompt, **kwargs)

    monkeypatch.setattr(HookedLM, "generate", counted)
    at = open_page("app_pages/bundled_model.py")
    assert len(calls) == 1 and "gave a drink to :blue-background[Mary" in texts(at)
    at.selectbox(key="bm_family").set_value("arithmetic").run()  # another widget: no new sample
    assert len(calls) == 1 and "gave a drink to :blue-background[Mary" in texts(at)
    at.number_input(key="bm_gen_seed").set_value(4).run()  # a sampling setting: a new sample
    assert len(calls) == 2 and calls[-1]["seed"] == 4
