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
