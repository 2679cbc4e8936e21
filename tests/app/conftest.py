"""AppTest fixtures shared by every page's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _tiny_models_may_be_linked(tmp_path_factory, monkeypatch):
    """A link may name model folders only under the server's model roots (LAB_MODEL_ROOTS): the tests'
    tiny models live under pytest's temporary folder, so that folder is a root here."""
    monkeypatch.setenv("LAB_MODEL_ROOTS", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(autouse=True)
def _notebook_in_a_temporary_database(tmp_path, monkeypatch):
    """Entries a test saves go to its own SQLite file, never to the developer's data/notebook.sqlite."""
    monkeypatch.setenv("LAB_NOTEBOOK_URL", f"sqlite:///{tmp_path / 'notebook.sqlite'}")
