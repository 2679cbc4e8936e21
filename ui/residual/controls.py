"""The Residual stream page's controls: an example to start from, the prompt, two answer tokens,
and what colours the lens grid. Values are bound to the URL, so a link reproduces the view."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.models import Prompt
from ui.common.models import prompt_box
from ui.common.page import escape_markdown, show_problem
from ui.residual.compute import MAX_TOKENS

# example -> (prompt, answer, other answer); the bundled world's words, which GPT-2 also has
EXAMPLES = {
    "IOI": ("When Mary and John went to the store, John gave a drink to", " Mary", " John"),
    "Induction": ("kite Oslo purple cheerful Ben lake moo Tokyo duck river. kite Oslo purple cheerful Ben",
                  " lake", " Ben"),
}
HUB_EXAMPLES = {
    "IOI": EXAMPLES["IOI"],
    "Induction": ("The old blue lamp stood near seven quiet stones. The old blue lamp", " stood", " lamp"),
}
COLOUR_BY = {"answer": "the answer token", "next": "the text's own next token"}


@dataclass(frozen=True)
class Settings:
    prompt: Prompt
    answer: str
    other: str
    answer_id: int
    other_id: int
    colour_by: str


def examples(lm) -> dict:
    return EXAMPLES if lm.is_bundled else HUB_EXAMPLES


def _load_example(lm_examples: dict) -> None:
    name = st.session_state.get("res_example")
    if name in lm_examples:
        text, answer, other = lm_examples[name]
        st.session_state.update(res_prompt=text, res_answer=answer, res_other=other)


def token_problem(lm, text: str, role: str) -> str | None:
    """Why `text` cannot be an answer token for this model, or None if it is one token."""
    if not text:
        return f"Type the {role} token first: the box is empty."
    if lm.single_token_id(text) is not None:
        return None
    pieces = lm.to_str_tokens(lm.to_tokens(text, prepend_bos=False)[0]) if text.strip() else []
    unknown = lm.unknown_words(text)
    why = (f"this model does not know {', '.join(repr(w) for w in unknown)}" if unknown
           else f"it is {len(pieces)} tokens for this model ({' | '.join(repr(p) for p in pieces)})")
    hint = ("" if text.startswith(" ")
            else " Inside a sentence a word starts with a space: ' Mary', not 'Mary'.")
    return f"The {role} token {escape_markdown(repr(text))} cannot be used: {why}.{hint}"


def settings(lm) -> Settings | None:
    """Draw the controls; None (after saying why) when the input cannot be used."""
    ex = examples(lm)
    first_text, first_answer, first_other = ex["IOI"]
    top, right = st.columns([3, 2])
    with right:
        st.selectbox("Start from an example", list(ex), key="res_example", on_change=_load_example,
                     args=(ex,), help="IOI: who receives the drink? Induction: a repeated run of words.")
        a_col, b_col = st.columns(2)
        answer = a_col.text_input("Answer token", value=first_answer, key="res_answer",
                                  bind="query-params", max_chars=60,
                                  help="One token; a word inside a sentence starts with a space.")
        other = b_col.text_input("Other token", value=first_other, key="res_other", bind="query-params",
                                 max_chars=60,
                                 help="Direct logit attribution splits logit(answer) - logit(other).")
        colour = st.segmented_control("Colour the lens by", list(COLOUR_BY), format_func=COLOUR_BY.get,
                                      default="answer", key="res_colour", bind="query-params")
    with top:
        prompt = prompt_box(lm, key="res_prompt", default=first_text, height=100, max_tokens=MAX_TOKENS)
    if prompt is None:
        return None
    problems = [p for p in (token_problem(lm, answer, "answer"), token_problem(lm, other, "other")) if p]
    if not problems and answer == other:
        problems.append("The answer and the other token are the same: their logit difference is always 0. "
                        "Pick two different tokens.")
    for p in problems:
        show_problem(p)
    if problems:
        return None
    return Settings(prompt, answer, other, lm.single_token_id(answer), lm.single_token_id(other),
                    colour or "answer")
