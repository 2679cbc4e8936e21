"""The notebook page's sections: the entries, the timeline, calibration, and export / import."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
import streamlit as st

from core.notebook.calibration import brier_score, calibration_verdict, graded
from core.notebook.entries import HEADINGS, Entry
from core.notebook.exchange import NotebookImportError, from_json, to_json, to_markdown
from ui.common import notebook
from ui.common.page import show_problem
from ui.common.registry import TOPICS
from ui.notebook import charts, frames


def base_url() -> str:
    """scheme://host[/base path] of this app, from the browser's URL (links in exports are absolute)."""
    try:
        parts = urlsplit(st.context.url or "")
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    path = parts.path.rstrip("/")
    page = path.rsplit("/", 1)[-1]
    if page in {t.url_path for t in TOPICS} | {"notebook"}:
        path = path[: -len(page)].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def summary(entries: list[Entry]) -> None:
    flash = st.session_state.pop("nb_flash", None)
    if flash:
        st.success(flash, icon=":material/check:")
    rows = graded(entries)
    a, b, c, d = st.columns(4)
    a.metric("Entries", f"{len(entries):,}", border=True)
    b.metric("Graded predictions", f"{len(rows):,}", border=True)
    right = sum(e.correct for e in rows)
    c.metric("Right", f"{right / len(rows):.0%}" if rows else "-", border=True)
    brier = brier_score(entries)
    d.metric("Brier score", f"{brier:.3f}" if brier is not None else "-", border=True,
             help="Mean of (stated confidence - outcome)^2: 0 is perfect; always saying 50% scores 0.25.")
    st.markdown(calibration_verdict(entries))


def add_note_form() -> None:
    with st.form("notebook_add", border=True):
        st.markdown("**Add a note** (no prediction needed)")
        page_col, heading_col = st.columns(2)
        pages = [t.url_path for t in TOPICS]
        titles = {t.url_path: t.title for t in TOPICS}
        page = page_col.selectbox("About the page", pages, format_func=titles.get, key="nb_note_page")
        heading = heading_col.selectbox("File under", HEADINGS, key="nb_note_heading")
        note = st.text_area("Note", key="nb_note_text", height=90, max_chars=20_000)
        if st.form_submit_button("Save note", icon=":material/save:"):
            if not note.strip():
                show_problem("Write something first: the note is empty.")
                return
            try:
                notebook.save_entry(Entry(page=page, model="", heading=heading, note=note))
            except (ValueError, sa.exc.SQLAlchemyError) as err:
                show_problem(f"Not saved: {err}")  # the text stays in the box
            else:
                st.toast("Saved.", icon=":material/check:")


def entries_table(entries: list[Entry]) -> None:
    frame = frames.table(entries, base_url())
    f1, f2, f3, f4 = st.columns([2, 2, 2, 3])
    pages = f1.multiselect("Pages", sorted(frame["page"].unique()), key="nb_pages")
    outcomes = f2.multiselect("Outcome", ["right", "wrong", "note"], key="nb_outcomes")
    headings = f3.multiselect("Filed under", HEADINGS, key="nb_headings")
    text = f4.text_input("Search", key="nb_search", placeholder="words in questions, notes, answers")
    shown = frames.filtered(frame, pages, outcomes, headings, text)
    st.caption(f"{len(shown):,} of {len(frame):,} entries. Notes are shown as plain text.")
    event = st.dataframe(
        shown, hide_index=True, key="nb_table", on_select="rerun", selection_mode="multi-row",
        column_config={
            "id": None,
            "when": st.column_config.DatetimeColumn("when", format="YYYY-MM-DD HH:mm"),
            "sure": st.column_config.NumberColumn("sure", format="percent"),
            "link": st.column_config.LinkColumn("experiment", display_text="open"),
        })
    chosen = [int(shown.iloc[i]["id"]) for i in event.selection.rows] if event and event.selection else []
    if chosen and st.button(f"Delete {len(chosen)} selected", icon=":material/delete:", key="nb_delete"):
        st.toast(f"Deleted {notebook.delete_entries(chosen)}.", icon=":material/delete:")
        st.rerun()


def timeline(entries: list[Entry]) -> None:
    if not entries:
        st.caption("Nothing yet: predictions and notes from every page land here.")
        return
    st.altair_chart(charts.timeline(frames.per_day(entries)), width="stretch")


def calibration(entries: list[Entry]) -> None:
    rel = frames.reliability_frame(entries)
    if rel.empty:
        st.caption("Calibration needs graded predictions: lock a prediction on any page and save it.")
        return
    left, right = st.columns(2)
    left.altair_chart(charts.reliability_chart(rel), width="stretch")
    right.altair_chart(charts.accuracy_chart(frames.page_accuracy(entries)), width="stretch")


def export_import(entries: list[Entry]) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Export**")
        base = base_url()
        st.download_button("Lab report (Markdown)", lambda: to_markdown(entries, base), "lab-notebook.md",
                           mime="text/markdown", icon=":material/description:", disabled=not entries)
        st.download_button("Everything (JSON, to import again)", lambda: to_json(entries),
                           "lab-notebook.json", mime="application/json", icon=":material/data_object:",
                           disabled=not entries)
    with right:
        st.markdown("**Import** a JSON file exported here")
        upload = st.file_uploader("Notebook file", type=["json"], key="nb_import",
                                  label_visibility="collapsed")
        if upload is not None and st.button("Import", key="nb_import_go", icon=":material/upload:"):
            try:
                new = from_json(upload.getvalue())
                notebook.save_entries(new)
            except (NotebookImportError, ValueError, sa.exc.SQLAlchemyError) as err:
                show_problem(f"Nothing was imported. {err}")
            else:
                st.session_state["nb_flash"] = f"Imported {len(new):,} entries."
                st.rerun()
