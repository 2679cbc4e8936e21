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
