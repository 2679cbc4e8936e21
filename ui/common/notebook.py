"""Saving to the lab notebook from any page.

`save_entry(entry)` keeps an entry for this learner; `add_note(page, lm)` is the "Add to notebook"
control every page shows for a note without a prediction. Where entries are kept (this session, a
SQLite file, or a database named in the deployment's secrets) is the notebook store's business
(see the Lab notebook page).
"""

from __future__ import annotations

import streamlit as st

from core.notebook.entries import HEADINGS, Entry

SESSION_KEY = "notebook_entries"


def experiment_url() -> str:
    """The query string of the page as it is now: every control bound to the URL, the model by id."""
    params = st.query_params.to_dict()
    return "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""


def save_entry(entry: Entry) -> None:
    """Keep an entry for this learner (this session's notebook)."""
    st.session_state.setdefault(SESSION_KEY, []).append(entry)


def note_form(entry: Entry, *, key: str) -> None:
    """A popover to file `entry` with a heading and a note (the note is optional)."""
    with st.popover("Add to notebook", icon=":material/edit_note:"):
        with st.form(f"{key}_note_form", border=False):
            heading = st.selectbox("File under", HEADINGS, key=f"{key}_heading")
            note = st.text_area("Note", key=f"{key}_note", height=100,
                                placeholder="What you saw, and what you make of it")
            saved = st.form_submit_button("Save", icon=":material/save:")
        if saved:
            try:
                save_entry(entry.with_note(heading, note))
            except ValueError as err:
                st.warning(str(err), icon=":material/warning:")
            else:
                st.toast("Saved to the notebook.", icon=":material/check:")


def add_note(page: str, model_spec: str, *, key: str) -> None:
    """The "Add to notebook" control for a note without a prediction."""
    note_form(Entry(page=page, model=model_spec, url=experiment_url()), key=key)
