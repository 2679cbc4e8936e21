"""The steering page's controls: where the vector comes from, and how hard and where to push.

Every value that defines the experiment is bound to the URL (keys start with "steer_"), so a link
reproduces the view. Directions handed over from the probes or SAE pages live only in this session.
"Layer L" is the stream after block L, as on every page (ui.common.layers); links from before that
convention (`steer_layer=L` meant the stream block L reads, i.e. after block L - 1) are translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from core.interp.steering.targets import BUNDLED_CONCEPTS, concept_classes
from core.models.generation import SamplingSettings
from core.models.hook_names import EMBEDDINGS, act_name, hook_label, stream_layer_of
from ui.common.handoff import Direction, received_directions
from ui.common.layers import short_label, stream_layer_select
from ui.common.page import show_problem
from ui.common.url_state import reads_param
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
    toward: str | None = None  # a class of the measured concept on the + side (None: its contrast)


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


# -- what a handed-over direction is about --------------------------------------------------------
_CLASS_CONCEPT = {"female": "gender", "male": "gender", "positive": "sentiment", "negative": "sentiment"}


def direction_concept(direction: Direction) -> tuple[str | None, str | None]:
    """(bundled concept, class it points to) of a handed-over direction, from its fields
    (`concept`, `toward`) when it has them, else from its name: "probe: subject gender → male, ..."
    -> ("gender", "male"); "SAE feature 7 (colours), ..." -> ("colour", None). (None, None) when
    the name says neither."""
    concept, toward = getattr(direction, "concept", None), getattr(direction, "toward", None)
    name = direction.name.lower()
    if concept is None:
        concept = next((c for c in BUNDLED_CONCEPTS if re.search(rf"\b{c}", name)), None)
    if toward is None:
        arrow = re.search(r"→\s*([a-z]+)", name)
        toward = arrow.group(1) if arrow else None
        if toward is None:  # an SAE label such as "positive words" or "female names"
            toward = next((w for w in _CLASS_CONCEPT if re.search(rf"\b{w}\b", name)), None)
    if concept is None and toward in _CLASS_CONCEPT:
        concept = _CLASS_CONCEPT[toward]
    if concept is None:
        return None, None
    return concept, toward if toward in concept_classes(concept) else None


def direction_layer(direction: Direction) -> int | None:
    """The stream layer (lab convention) a direction lives at, or None for a hook off the stream."""
    return stream_layer_of(direction.hook_name)


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
        layer = direction_layer(direction)
        where = (f"layer {short_label(layer)}" if layer is not None else hook_label(direction.hook_name))
        st.markdown(f"**{direction.name}** from the {direction.source} page: steered where it was "
                    f"found, at {where} (`{direction.hook_name}`: {hook_label(direction.hook_name)}).")
        if lm.is_bundled:
            concept, toward = direction_concept(direction)
            options = list(BUNDLED_CONCEPTS)
            measure = st.selectbox("Measure the effect on", options, key="steer_measure",
                                   index=options.index(concept) if concept else 0,
                                   bind="query-params", format_func=CONCEPT_LABELS.get,
                                   help="By default the concept the direction was found for.")
            if concept is None:
                st.caption("The direction's name does not say which concept it is about: pick the "
                           "one to measure.")
            toward = toward if measure == concept else None
            if toward:
                st.caption(f"Oriented as the direction points: {toward} counts as +.")
            label = direction.name + (f" (toward {toward})" if toward else "")
            return Source("direction", (), measure, label, direction, toward=toward)
        pairs = _typed_pairs(lm, label="Measure on the first words where these pairs differ")
        if pairs is None:
            return None
        return Source("direction", pairs, TYPED, direction.name, direction)


LAYER_KEY, OLD_LAYER_KEY = "steer_at", "steer_layer"
# The defaults, measured on the bundled model (sentiment, prompt below, 40 tokens, temperature 1):
# after layer 2 at +3 the balance P(+) - P(-) moves +53 points, random pushes of the same norm at most
# 8, and the steered texts' perplexity is 1.08x the unsteered ones' (median of 10 groups of 4 seeds,
# at most 1.94x): it steers and stays fluent. At +4 that ratio is 1.58x (up to 4.1x); after layer 1 at
# +3 it is 1.73x (up to 3.0x); after layer 3 random pushes move the balance almost as much (0.18 vs 0.15).
DEFAULT_COEFFICIENT = 3.0
BUNDLED_DEFAULT_LAYER = 2


@dataclass(frozen=True)
class Settings:
    layer: int  # stream layer: EMBEDDINGS (-1) or the block the stream comes out of
    coefficient: float
    start_pos: int
    sampling: SamplingSettings


def max_start(lm) -> int:
    """The top of the "Steer from position" slider: fixed per model, whatever the prompt."""
    return min(lm.cfg.n_ctx - 1, MAX_START)


def default_layer(lm) -> int:
    """The bundled model: measured; other models: the stream entering the middle block."""
    return BUNDLED_DEFAULT_LAYER if lm.is_bundled else max(EMBEDDINGS, lm.cfg.n_layers // 2 - 1)


def migrate_old_layer(lm) -> None:
    """A link from before the lab's layer convention: `steer_layer=L` steered the stream block L
    reads (blocks.L.hook_resid_pre), which is now called layer L - 1 (or the embeddings)."""
    reads_param(OLD_LAYER_KEY)  # read here, not by a widget: the link note must not call it unknown
    old = st.query_params.get(OLD_LAYER_KEY)
    if old is None:
        return
    del st.query_params[OLD_LAYER_KEY]
    if LAYER_KEY in st.query_params or LAYER_KEY in st.session_state:
        return
    try:
        block = int(old)
    except ValueError:
        return
    if 0 <= block < lm.cfg.n_layers:
        st.session_state[LAYER_KEY] = stream_layer_of(act_name("resid_pre", block))


def pick_settings(lm, source: Source, n_prompt: int) -> Settings:
    """Sliders for layer, coefficient, positions, temperature, seed (and top-k, length)."""
    migrate_old_layer(lm)
    cols = st.columns([1.2, 2.4, 1.8, 1.2])
    fixed = direction_layer(source.direction) if source.direction is not None else None
    with cols[0]:
        if source.direction is None:
            layer = stream_layer_select(lm.cfg.n_layers, key=LAYER_KEY, default=default_layer(lm),
                                        help="The vector is built and added in the residual stream "
                                             "after this layer (what the next layer reads); 'embed' "
                                             "is before layer 0.")
        else:  # a handed-over direction keeps its own layer: shown, not chosen
            options = [EMBEDDINGS, *range(lm.cfg.n_layers)] if fixed is not None else ["its own"]
            layer = st.select_slider("Layer", options, value=fixed if fixed is not None else "its own",
                                     format_func=lambda v: short_label(v) if isinstance(v, int) else v,
                                     disabled=True, help="A handed-over direction is steered at the "
                                                         "point where it was found.")
            layer = fixed if fixed is not None else EMBEDDINGS
    with cols[1]:
        coefficient = st.slider("Coefficient", -COEF_LIMIT, COEF_LIMIT, DEFAULT_COEFFICIENT, step=0.5,
                                key="steer_coef", bind="query-params",
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
                                bind="query-params",
                                help="0 is greedy: always the most likely token. Above 0, both texts "
                                     "use the same random numbers at every step.")
    cols = st.columns([1.2, 2.4, 1.8, 1.2])
    with cols[0]:
        seed = st.number_input("Seed", 0, 1_000_000, 0, key="steer_seed", bind="query-params",
                               help="Both texts are written with this seed and the same random "
                                    "numbers at every step, so where they part it is the push's doing.")
    with cols[1]:
        n_new = st.slider("New tokens", 5, 80, 40, step=5, key="steer_new", bind="query-params")
    with cols[2]:
        top_k = st.select_slider("Top-k", [0, 5, 10, 20, 50, 100], 0, key="steer_topk",
                                 format_func=lambda k: "off" if k == 0 else str(k),
                                 bind="query-params", help="Sample only among the k most likely tokens; "
                                                           "0 keeps them all.")
    sampling = SamplingSettings(max_new_tokens=int(n_new), temperature=float(temperature),
                                top_k=int(top_k) or None, seed=int(seed), stop_at_eos=False)
    return Settings(int(layer), float(coefficient), int(start_pos), sampling)
