from ui.common.registry import PLANNED, SECTIONS, TOPICS


def test_every_planned_page_exists():
    assert [t.path for t in TOPICS] == [t.path for t in PLANNED]


def test_topics_have_known_sections_and_unique_urls():
    assert {t.section for t in PLANNED} <= set(SECTIONS)
    assert len({t.url_path for t in PLANNED}) == len(PLANNED)


def test_sections_list_topics_in_path_order():
    # the sidebar groups by section; that grouping must not reorder the path ("Next" follows it)
    grouped = [t for s in SECTIONS for t in PLANNED if t.section == s]
    assert grouped == list(PLANNED)


def test_next_topic_follows_the_path_and_ends():
    from ui.common.registry import next_topic
    assert next_topic("") == TOPICS[0]
    assert next_topic(TOPICS[0].url_path) == TOPICS[1]
    assert next_topic(TOPICS[-1].url_path) is None
