"""The steering page's controls: where the vector comes from, and how hard and where to push.

Every value that defines the experiment is bound to the URL (keys start with "steer_"), so a link
reproduces the view. Directions handed over from the probes or SAE pages live only in this session.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.interp.steering.effect import BUNDLED_CONCEPTS
from ui.common.handoff import Direction, received_directions
from ui.common.page import show_problem
from ui.steering.compute import COEF_LIMIT, bundled_pairs

TYPED = "pairs I type"
HANDOFF_PREFIX = "received: "
CONCEPT_LABELS = {"sentiment": "sentiment (positive - negative)", "gender": "gender (female - male)",
                  "colour": "colour (red - blue)", "place": "place (beach - school)"}
METHODS = ("mean difference (CAA)", "one pair (ActAdd)")
MAX_PAIRS, MAX_PAIR_CHARS = 64, 300
MAX_PAIRS_BOX = 2000  # characters in the pairs box: the text lives in the URL
MAX_START = 256  # the "Steer from position" slider's top for models with a longer context
DEFAULT_PAIRS = {
    True: "Mary was happy at the park. | Mary was sad at the park.\n"
          "Tom felt glad. | Tom felt angry.\n"
          "The day was lovely. | The day was awful.",
    False: "I love this | I hate this\nThe day was wonderful | The day was terrible\n"
           "She smiled and said | She frowned and said",
}


@dataclass(frozen=True)
class Source:
    """Where the steering vector comes from, and what its effect is measured on."""

    kind: str  # "concept" (bundled contrast set), "pairs" (typed) or "direction" (handed over)
    pairs: tuple[tuple[str, str], ...]  # contrast pairs (empty for a direction)
    measure: str  # a bundled concept name, or TYPED (the + / - words of the typed pairs)
    label: str  # what + means, for the page's text
    direction: Direction | None = None
    method: str = METHODS[0]


def parse_pairs(text: str) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """Lines "plus text | minus text" -> pairs, and a list of problems to show."""
    pairs, problems = [], []
    for i, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 2 or not all(parts):
            problems.append(f"line {i} needs one '|' between two texts: {line.strip()[:60]!r}")
        elif max(len(p) for p in parts) > MAX_PAIR_CHARS:
            problems.append(f"line {i} is longer than {MAX_PAIR_CHARS} characters")
        elif parts[0] == parts[1]:
            problems.append(f"line {i} has the same text on both sides")
        else:
            pairs.append((parts[0], parts[1]))
    if len(pairs) > MAX_PAIRS:
        problems.append(f"only the first {MAX_PAIRS} pairs are used")
        pairs = pairs[:MAX_PAIRS]
    return tuple(pairs), problems


def _typed_pairs(lm, *, label: str) -> tuple[tuple[str, str], ...] | None:
    text = st.text_area(label, value=DEFAULT_PAIRS[lm.is_bundled], key="steer_pairs",
                        bind="query-params", height=110, max_chars=MAX_PAIRS_BOX,
                        help="One pair per line: the + text, a vertical bar, the - text. The pairs "
                             f"should differ only in the concept. At most {MAX_PAIRS_BOX:,} characters "
                             "(the pairs are part of the page's link).")
    if len(text or "") >= MAX_PAIRS_BOX:
        show_problem(f"Contrast pairs: the box is full (it holds at most {MAX_PAIRS_BOX:,} "
                     "characters, and text past that is cut): check that the last pair is complete.")
    pairs, problems = parse_pairs(text)
    for p in problems:
        show_problem(f"Contrast pairs: {p}.")
    unknown = sorted({w for pair in pairs for t in pair for w in lm.unknown_words(t)})
    if unknown:
        show_problem(f"The {lm.name} does not know these words: {', '.join(unknown)}.")
    if not pairs:
        show_problem("Type at least one contrast pair, like `I love this | I hate this`.")
        return None
    return pairs


def pick_source(lm, left, right) -> Source | None:
    """Concept picker in `left`, its pairs in `right`; None (after saying why) when the input cannot
    make a vector."""
    received = {HANDOFF_PREFIX + d.name: d for d in received_directions(lm.spec)}
    options = [*(BUNDLED_CONCEPTS if lm.is_bundled else ()), TYPED, *received]
    with left:
        choice = st.selectbox(
            "Steer toward", options, key="steer_concept", bind="query-params",
            format_func=lambda o: CONCEPT_LABELS.get(o, o),
            help="A contrast set of the bundled world, pairs you type, or a direction sent from the "
                 "probes or SAE page.")
        if not received:
            st.caption("Directions found on the Probes and SAE pages can be sent here.")
        method = METHODS[0]
        if choice not in received:
            method = st.radio("Vector from", METHODS, key="steer_method", bind="query-params",
                              horizontal=True, help="CAA averages the difference over all pairs; "
                                                    "ActAdd uses only the first pair.")
    with right:
        if choice in BUNDLED_CONCEPTS:
            pairs = bundled_pairs(choice)
            with st.expander(f"The {len(pairs)} contrast pairs of the bundled world"):
                st.markdown("\n".join(f"- {p} | {m}" for p, m in pairs))
            pairs = pairs[:1] if method == METHODS[1] else pairs
            return Source("concept", pairs, choice, CONCEPT_LABELS[choice], method=method)
        if choice == TYPED:
            pairs = _typed_pairs(lm, label="Contrast pairs (+ text | - text)")
            if pairs is None:
                return None
            pairs = pairs[:1] if method == METHODS[1] else pairs
            return Source("pairs", pairs, TYPED, "your + texts - your - texts", method=method)
        direction = received[choice]
        st.markdown(f"**{direction.name}** from the {direction.source} page, read at "
                    f"`{direction.hook_name}`.")
        if lm.is_bundled:
            measure = st.selectbox("Measure the effect on", BUNDLED_CONCEPTS, key="steer_measure",
                                   bind="query-params", format_func=CONCEPT_LABELS.get)
            return Source("direction", (), measure, direction.name, direction)
        pairs = _typed_pairs(lm, label="Measure on the first words where these pairs differ")
        if pairs is None:
            return None
        return Source("direction", pairs, TYPED, direction.name, direction)


@dataclass(frozen=True)
class Settings:
    layer: int
    coefficient: float
    start_pos: int
    temperature: float
    top_k: int | None
    seed: int
    n_new: int


def max_start(lm) -> int:
    """The top of the "Steer from position" slider: fixed per model, whatever the prompt."""
    return min(lm.cfg.n_ctx - 1, MAX_START)


def pick_settings(lm, source: Source, n_prompt: int) -> Settings:
    """Sliders for layer, coefficient, positions, temperature, seed (and top-k, length)."""
    cols = st.columns([1.2, 2.4, 1.8, 1.2])
    fixed_layer = source.direction is not None
    with cols[0]:
        layer = st.slider("Layer", 0, lm.cfg.n_layers - 1, min(lm.cfg.n_layers // 2, lm.cfg.n_layers - 1),
                          key="steer_layer", bind="query-params", disabled=fixed_layer,
                          help="The vector is read and added at blocks.{layer}.hook_resid_pre." + (
                              " A handed-over direction keeps its own hook point." if fixed_layer else ""))
    with cols[1]:
        coefficient = st.slider("Coefficient", -COEF_LIMIT, COEF_LIMIT, 4.0, step=0.5, key="steer_coef",
                                bind="query-params",
                                help="The hook adds coefficient x vector. 0 changes nothing; negative "
                                     "steers the other way.")
    with cols[2]:
        # A fixed range: a slider whose max followed the prompt would be a new widget (value and
        # URL parameter reset) on every prompt edit. The value is clamped to the prompt instead.
        wanted = st.slider("Steer from position", 0, max_start(lm), 0, key="steer_from",
                           bind="query-params",
                           help=f"0 steers every position, BOS included; the prompt's length (now "
                                f"{n_prompt}) or more steers only the new tokens.")
        start_pos = min(int(wanted), n_prompt)
        if start_pos < wanted:
            st.caption(f"The prompt has {n_prompt} tokens, so steering starts at position {n_prompt}: "
                       "the first new token.")
    with cols[3]:
        temperature = st.slider("Temperature", 0.0, 2.0, 1.0, step=0.1, key="steer_temp",
                                bind="query-params", help="0 is greedy: always the most likely token.")
    cols = st.columns([1.2, 2.4, 1.8, 1.2])
    with cols[0]:
        seed = st.number_input("Seed", 0, 1_000_000, 0, key="steer_seed", bind="query-params",
                               help="Both texts are sampled with this seed, so any difference is "
                                    "the steering's doing.")
    with cols[1]:
        n_new = st.slider("New tokens", 5, 80, 40, step=5, key="steer_new", bind="query-params")
    with cols[2]:
        top_k = st.select_slider("Top-k", [0, 5, 10, 20, 50, 100], 0, key="steer_topk",
                                 format_func=lambda k: "off" if k == 0 else str(k),
                                 bind="query-params", help="Sample only among the k most likely tokens; "
                                                           "0 keeps them all.")
    return Settings(layer, float(coefficient), int(start_pos), float(temperature), int(top_k) or None,
                    int(seed), int(n_new))
