"""The parts every topic page shares: the header that says what you will learn, and the
"how it is computed" expander that shows the core module's docstring (the lesson) and its paper."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import NoReturn

import streamlit as st


class EndPage(Exception):  # noqa: N818 - a signal, not an error
    """Raised by end_page(); app.py catches it after the page and still draws the page's foot."""


def end_page() -> NoReturn:
    """End the page here (after a message saying why), like st.stop() but for this page only.

    st.stop() stops the whole script run, and in a multipage app that includes what app.py draws
    after the page: the "Next" link, "Add to notebook" and the note about a link's values."""
    raise EndPage


def page_header(title: str, learn: str, question: str) -> None:
    """1. What you will learn: a title, two or three sentences, and the question the page answers."""
    st.title(title)
    st.markdown(learn)
    st.info(f"**The question:** {question}", icon=":material/help:")


def how_it_is_computed(*modules: ModuleType, papers: tuple[str, ...] = ()) -> None:
    """5. An expander with each core module's docstring and the papers it comes from."""
    with st.expander("How it is computed", icon=":material/function:"):
        for module in modules:
            st.markdown(f"**`{module.__name__}`**")
            st.markdown(inspect.getdoc(module) or "")
        if papers:
            st.markdown("**Papers and sources**")
            st.markdown("\n".join(f"- {p}" for p in papers))


def show_problem(message: str) -> None:
    """A clear, non-crashing message for bad input; the page keeps running."""
    st.warning(message, icon=":material/warning:")


def escape_markdown(text: str) -> str:
    """Text that st.markdown shows literally (model output can contain *, _, [, $ ...)."""
    return "".join("\\" + ch if ch in "\\`*_{}[]<>()#+-.!|$~:" else ch for ch in text)


def continuation_markdown(prompt_text: str, new_text: str) -> str:
    """Prompt in plain text, the model's continuation highlighted (markdown-escaped both)."""
    spacer = " " if new_text[:1].isspace() else ""
    body = escape_markdown(new_text.strip()) or "(nothing: the model ended the text)"
    return f"{escape_markdown(prompt_text)}{spacer}:blue-background[{body}]"


def experiment_link(url_path: str) -> str:
    """The full link to this page as it is now: the app's address, the page, and every control bound to
    the URL (the model by its id). Opened in a fresh browser it shows the same experiment."""
    from urllib.parse import urlencode, urlsplit

    try:
        parts = urlsplit(st.context.url or "")
        base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    except ValueError:
        base = ""
    query = urlencode(st.query_params.to_dict())
    return f"{base}/{url_path}" + (f"?{query}" if query else "")


def page_footer(url_path: str, uses_model: bool) -> None:
    """The foot of every topic page: a link to this experiment, "Add to notebook" for a note, and a
    link to the next topic."""
    from ui.common.notebook import add_note
    from ui.common.registry import next_topic

    st.divider()
    share, note, nxt = st.columns([1, 1, 2], vertical_alignment="center")
    with share.popover("Copy link to this experiment", icon=":material/link:"):
        st.code(experiment_link(url_path), language=None, wrap_lines=True)
        st.caption("Every setting of this page is in the link. Where a result needs a run (training an "
                   "SAE, fine-tuning, training a transformer), the link restores the settings and one click "
                   "reruns them.")
    with note:
        model = ""
        if uses_model:
            from ui.common.models import current_model
            model = current_model().spec
        add_note(url_path, model, key="page_note")
    topic = next_topic(url_path)
    if topic is not None:
        with nxt:
            st.page_link(topic.script, label=f"Next: {topic.title}", icon=":material/arrow_forward:",
                         help=topic.blurb)
