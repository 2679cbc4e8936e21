from tests.app.helpers import open_page, texts


def test_home_opens_and_lists_the_path():
    at = open_page("app_pages/home.py")
    assert "LLM Internals Lab" in texts(at)
    assert "XOR network" in texts(at)
