"""The lab notebook from any page: where entries are kept, and saving one.

Where entries live depends on the deployment:
- a local run: one notebook in a database, SQLite by default (data/notebook.sqlite, created on first
  use, git-ignored), or any SQLAlchemy URL from `[connections.notebook] url = ...` in Streamlit's
  secrets or the LAB_NOTEBOOK_URL environment variable (e.g. PostgreSQL for a shared deployment);
- a deployment with login configured (st.login / st.user): the same database, each entry owned by the
  signed-in user, who alone can read or change it; before signing in, this session only;
- a shared deployment without login (LAB_NOTEBOOK=session, which the Cloud entry sets unless a
  database is configured): this browser session only, taken out and brought back as a file, because a
  shared disk would mix visitors' notebooks (and Community Cloud wipes its disk on restart).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa
import streamlit as st

from core.notebook.entries import HEADINGS, MAX_URL_CHARS, Entry
from core.notebook.store import NotebookStore
from ui.common.budget import hold

SESSION_KEY = "notebook_entries"
MAX_SESSION_ENTRIES = 5_000  # a session's notebook lives in the server's memory: a bound per visitor
MAX_OWNER_ENTRIES = 50_000  # one learner's notebook in a shared database
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE = ROOT / "data" / "notebook.sqlite"


@dataclass(frozen=True)
class Where:
    """Where this learner's entries are kept, in words the notebook page shows."""
    kind: str  # "database" or "session"
    owner: str  # "" on a local run, the signed-in user's id with login
    words: str


def _secret_url() -> str | None:
    try:
        return st.secrets.get("connections", {}).get("notebook", {}).get("url")
    except (FileNotFoundError, KeyError, AttributeError, st.errors.StreamlitSecretNotFoundError):
        return None


def database_url() -> str:
    """Secrets, then LAB_NOTEBOOK_URL, then the local SQLite file."""
    return _secret_url() or os.environ.get("LAB_NOTEBOOK_URL") or f"sqlite:///{DEFAULT_SQLITE}"


def _login_configured() -> bool:
    return "is_logged_in" in st.user.to_dict()


def where() -> Where:
    configured = bool(_secret_url() or os.environ.get("LAB_NOTEBOOK_URL"))
    if _login_configured():
        if st.user.is_logged_in:
            who = str(st.user.get("email") or st.user.get("sub") or "")
            return Where("database", who, f"the lab's database, as {who}: only you can see them")
        return Where("session", "", "this browser session only, until you sign in")
    if os.environ.get("LAB_NOTEBOOK") == "session" and not configured:
        return Where("session", "", "this browser session only: this shared deployment keeps no "
                                     "notebooks on its disk. Export your notebook to keep it.")
    url = sa.make_url(database_url())
    place = f"the SQLite file {url.database}" if url.drivername.startswith("sqlite") else \
        f"the {url.get_backend_name()} database configured for this deployment"
    return Where("database", "", place)


@st.cache_resource(show_spinner=False)
def _store(url: str) -> NotebookStore:
    if url.startswith("sqlite:///"):
        Path(sa.make_url(url).database).parent.mkdir(parents=True, exist_ok=True)
    return NotebookStore(st.connection("notebook", type="sql", url=url).engine)


def store() -> NotebookStore:
    return _store(database_url())


def entries() -> list[Entry]:
    """This learner's entries, oldest first (read fresh on every call)."""
    place = where()
    if place.kind == "session":
        return list(st.session_state.get(SESSION_KEY, []))
    return store().entries(place.owner)


def save_entries(new: list[Entry]) -> None:
    """Keep entries for this learner, all or none; ValueError (saying what to do) past the limit."""
    place = where()
    if place.kind == "session":
        book = st.session_state.setdefault(SESSION_KEY, [])
        _check_room(len(book), len(new), MAX_SESSION_ENTRIES, "this session's notebook")
        start = max((e.id or 0 for e in book), default=0)
        book.extend(replace(e, id=start + i + 1) for i, e in enumerate(new))
        hold("notebook", sum(len(e.note) + len(e.url) + 500 for e in book))
        return
    _check_room(store().count(place.owner), len(new), MAX_OWNER_ENTRIES, "your notebook")
    store().add_many(new, owner=place.owner)


def _check_room(have: int, adding: int, limit: int, what: str) -> None:
    if have + adding > limit:
        raise ValueError(f"{what[:1].upper() + what[1:]} keeps up to {limit:,} entries; it has {have:,} "
                         f"and this would add {adding:,}. Export it and delete older entries first.")


def save_entry(entry: Entry) -> None:
    save_entries([entry])


def delete_entries(ids: list[int]) -> int:
    place = where()
    if place.kind == "session":
        book = st.session_state.get(SESSION_KEY, [])
        keep = [e for e in book if e.id not in set(ids)]
        st.session_state[SESSION_KEY] = keep
        hold("notebook", sum(len(e.note) + len(e.url) + 500 for e in keep))
        return len(book) - len(keep)
    return store().delete(ids, owner=place.owner)


def experiment_url() -> str:
    """The query string of the page as it is now: every control bound to the URL, the model by id."""
    from urllib.parse import urlencode

    params = st.query_params.to_dict()
    url = "?" + urlencode(params) if params else ""
    return url if len(url) <= MAX_URL_CHARS else ""  # too long to keep as a link: the entry has none


def note_form(make_entry: Callable[[], Entry], *, key: str) -> None:
    """A popover to file the entry `make_entry()` builds with a heading and a note (optional)."""
    with st.popover("Add to notebook", icon=":material/edit_note:"):
        with st.form(f"{key}_note_form", border=False, clear_on_submit=False):
            heading = st.selectbox("File under", HEADINGS, key=f"{key}_heading")
            note = st.text_area("Note", key=f"{key}_note", height=100,
                                placeholder="What you saw, and what you make of it")
            saved = st.form_submit_button("Save", icon=":material/save:")
        if saved:
            try:
                save_entry(make_entry().with_note(heading, note))
            except (ValueError, sa.exc.SQLAlchemyError) as err:
                st.warning(f"Not saved: {err}", icon=":material/warning:")  # the note stays in the box
            else:
                st.toast("Saved to the notebook.", icon=":material/check:")


def add_note(page: str, model_spec: str, *, key: str) -> None:
    """The "Add to notebook" control for a note without a prediction."""
    note_form(lambda: Entry(page=page, model=model_spec, url=experiment_url()), key=key)
