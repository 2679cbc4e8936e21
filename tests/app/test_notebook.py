"""The Lab notebook page: notes and graded predictions land in the database and come back, a file
round-trips, hostile files are refused, and a shared deployment keeps entries in the session."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from core.notebook.entries import Entry
from core.notebook.exchange import to_json
from core.notebook.store import NotebookStore
from tests.app.helpers import open_page, texts


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'notebook.sqlite'}"
    monkeypatch.setenv("LAB_NOTEBOOK_URL", url)
    monkeypatch.delenv("LAB_NOTEBOOK", raising=False)
    return NotebookStore.from_url(url)


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_note_is_saved_to_the_database_and_listed(db):
    at = open_page("app_pages/notebook.py")
    assert "SQLite file" in texts(at)
    at.text_area(key="nb_note_text").set_value("Induction heads need a previous-token head first.")
    at.selectbox(key="nb_note_heading").set_value("surprise")
    _button(at, "Save note").click().run()
    assert not at.exception
    [saved] = db.entries()
    assert saved.heading == "surprise" and saved.note.startswith("Induction heads")
    assert at.dataframe[0].value.shape[0] == 1


def test_an_empty_note_is_explained_and_nothing_is_saved(db):
    at = open_page("app_pages/notebook.py")
    _button(at, "Save note").click().run()
    assert "empty" in texts(at) and db.count() == 0


def test_a_graded_prediction_goes_from_a_page_to_the_notebook(db):
    at = open_page("app_pages/attention.py", predict=True)
    at.selectbox(key="attn_predict_answer").set_value((2, 0))
    _button(at, "Lock my prediction").click().run()
    assert "You predicted" in texts(at)
    at.text_area(key="attn_predict_graded_note").set_value("Right, and it was 2.0 as the report says.")
    _button(at, "Save").click().run()
    assert not at.exception
    [entry] = db.entries()
    assert entry.page == "attention" and entry.prediction == "head 2.0" and entry.correct is not None
    assert entry.confidence == 0.7 and "previous-token" in entry.question and entry.model == "bundled"
    at.switch_page("app_pages/notebook.py").run()
    assert "1 graded prediction" in texts(at)


def _import(at: AppTest, name: str, data: bytes) -> AppTest:
    at.session_state["nb_tab"] = "Export & import"
    at.run()
    at.file_uploader(key="nb_import").upload(name, data, "application/json").run()
    _button(at, "Import").click().run()
    assert not at.exception
    return at


def test_an_exported_file_imports_back_and_a_hostile_one_is_refused(db):
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    entries = [Entry(page="xor", model="bundled", note=f"n{i}", heading="what worked",
                     created=t0 + timedelta(hours=i)) for i in range(3)]
    at = _import(open_page("app_pages/notebook.py"), "mine.json", to_json(entries).encode())
    assert "Imported 3 entries" in texts(at) and [e.note for e in db.entries()] == ["n0", "n1", "n2"]
    at = _import(at, "evil.json", b'{"format": "llm-internals-lab-notebook", "entries": [{"page": 1}]}')
    assert "Nothing was imported" in texts(at) and db.count() == 3
    at = _import(at, "junk.json", bytes(range(256)) * 10)
    assert "not JSON" in texts(at) and db.count() == 3


def test_five_thousand_entries_open(db):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    db.add_many([Entry(page="attention", model="bundled", question="q", prediction="head 2.0",
                       confidence=0.5 + (i % 6) / 10, measured="head 2.0", correct=i % 3 > 0,
                       created=t0 + timedelta(minutes=i)) for i in range(5000)])
    start = time.perf_counter()
    at = open_page("app_pages/notebook.py")
    print(f"notebook page with 5,000 entries: {time.perf_counter() - start:.2f} s (AppTest, incl. app start)")
    assert at.dataframe[0].value.shape[0] == 5000 and "5,000" in [m.value for m in at.metric][0]
    # confidences cycle 0.5 .. 1.0, right unless i % 3 == 0: the Brier score, computed here directly
    expected = sum((0.5 + (i % 6) / 10 - float(i % 3 > 0)) ** 2 for i in range(5000)) / 5000
    assert next(m.value for m in at.metric if m.label == "Brier score") == f"{expected:.3f}"


def test_a_shared_deployment_keeps_the_notebook_in_the_session(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_NOTEBOOK_URL", raising=False)
    monkeypatch.setenv("LAB_NOTEBOOK", "session")
    at = open_page("app_pages/notebook.py")
    assert "this browser session only" in texts(at)
    at.text_area(key="nb_note_text").set_value("kept in the session")
    _button(at, "Save note").click().run()
    assert at.dataframe[0].value.shape[0] == 1
    assert [e.note for e in at.session_state["notebook_entries"]] == ["kept in the session"]


def test_random_files_as_an_import_are_refused_and_nothing_is_lost(db):
    import random

    rng = random.Random(20261207)
    db.add(Entry(page="xor", model="bundled", note="kept"))
    at = open_page("app_pages/notebook.py")
    head = '{"format": "llm-internals-lab-notebook", "entries": '
    crafted = [b"{}", b"[]", b"null", (head + "{}}").encode(),
               (head + '[{"page": "💥", "model": "m"}]}').encode(),
               (head + '[{"page": "/evil.example", "model": "m"}]}').encode(),
               b"\xff\xfe" + "{}".encode("utf-16-le")]
    for i in range(12):
        blob = (bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 50, 3000]))) if i % 2
                else rng.choice(crafted))
        at = _import(at, f"f{i}.json", blob)
        assert "Nothing was imported" in texts(at), blob[:60]
    assert [e.note for e in db.entries()] == ["kept"]


def test_a_session_notebook_is_bounded(monkeypatch):
    import ui.common.notebook as nb

    monkeypatch.delenv("LAB_NOTEBOOK_URL", raising=False)
    monkeypatch.setenv("LAB_NOTEBOOK", "session")
    monkeypatch.setattr(nb, "MAX_SESSION_ENTRIES", 2)
    at = open_page("app_pages/notebook.py")
    for i in range(3):
        at.text_area(key="nb_note_text").set_value(f"note {i}")
        _button(at, "Save note").click().run()
    assert "keeps up to 2 entries" in texts(at)
    assert [e.note for e in at.session_state["notebook_entries"]] == ["note 0", "note 1"]
    assert at.text_area(key="nb_note_text").value == "note 2"  # what was typed is not lost
