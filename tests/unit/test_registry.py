from ui.common.registry import PLANNED, SECTIONS, TOPICS


def test_every_planned_page_exists():
    assert [t.path for t in TOPICS] == [t.path for t in PLANNED]


def test_topics_have_known_sections_and_unique_urls():
    assert {t.section for t in PLANNED} <= set(SECTIONS)
    assert len({t.url_path for t in PLANNED}) == len(PLANNED)
