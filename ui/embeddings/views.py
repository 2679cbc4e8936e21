"""The Embeddings & positions page's three views: token geometry, neighbours and analogies, positions.

Each view draws its controls on every run (so the URL keeps them while another tab is open) and
computes only when its tab is open. Sentences about a result are worded from the verdicts of
core.interp.embeddings.verdicts.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from core.interp.embeddings import geometry as E
from core.interp.embeddings import verdicts as V
from core.notebook.questions.embeddings import ANALOGY, SEPARATION
from ui.common.page import escape_markdown, show_problem
from ui.common.predict import predict_first
from ui.embeddings import charts, compute, controls, frames

VIEWS = ("Token geometry", "Neighbours & analogies", "Positions")
PLACES = {"first": "the top answer", "near the top": f"among the top {V.NEAR_TOP}",
          "further down": f"below the top {V.NEAR_TOP}"}


def _digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def geometry(lm, is_open: bool) -> None:
    """Categories of tokens: a picture (PCA or t-SNE) and, in the full space, how well they separate."""
    if lm.is_bundled:
        st.markdown("The categories come from the grammar that wrote the bundled model's training text, "
                    "so the colours are the truth; the question is whether the geometry found it.")
    chosen = controls.geometry(lm)
    if not is_open or chosen.groups is None:
        return
    tokens = compute.token_set(lm, chosen.groups)
    if tokens.dropped:
        st.caption("Left out (not one known token of this model, or repeated): "
                   + escape_markdown(", ".join(tokens.dropped)))
    if len(tokens.ids) < 3 or len(tokens.categories) < 2:
        show_problem("Give at least two categories and three tokens in all to draw and compare them.")
        return
    matrix = compute.SPACES[chosen.space]
    step = predict_first(SEPARATION, key="emb_predict_sep", page="embeddings", model=lm.spec,
                         context=_digest(lm.spec, chosen.space, tokens.ids, tokens.labels),
                         fields=dict(n=len(tokens.categories), matrix=matrix))
    if not step.ready:
        return
    try:
        sep = compute.separation(lm, chosen.space, tokens.ids, tokens.labels)
    except ValueError as err:
        show_problem(str(err))
        sep = None
    if sep is not None:
        step.reveal(sep)
    projection = compute.projection(lm, chosen.space, tokens.ids, chosen.method)
    if projection.explained:
        axes = [f"PC{i + 1} ({share:.0%} of the variance)" for i, share in enumerate(projection.explained)]
    else:
        axes = ["t-SNE 1", "t-SNE 2"]
    if sep is not None:
        _separation(lm, chosen.space, tokens, sep)
    scatter = frames.scatter_frame(tokens, projection, chosen.labels)
    st.altair_chart(charts.token_scatter(scatter, x_title=axes[0], y_title=axes[1],
                                         categories=list(tokens.categories)), width="stretch",
                    height=charts.SCATTER_HEIGHT)
    if chosen.labels:
        st.caption(f"{int(scatter['label'].astype(bool).sum())} of {len(scatter)} tokens written (the "
                   "others would overlap a label or a point); hover over a point for its token.")
    if chosen.method == "tsne":
        st.caption("t-SNE keeps near neighbours near: clusters are real, but the distances between "
                   "clusters and their sizes mean little.")


def separation_sentence(sep: E.Separation) -> str:
    """The measured verdict on how well the categories separate, in words."""
    v = V.separation_verdict(sep)
    found = (f"a linear probe names the category of {v.accuracy:.0%} of tokens it never saw, against "
             f"{v.baseline:.0%} for {v.baseline_name}")
    if v.level == "cleanly":
        return f"**Measured:** the categories separate cleanly: {found}."
    if v.level == "partly":
        return (f"**Measured:** the categories separate only partly: {found}, under "
                f"{V.SEPARATED_AT:.0%}.")
    return (f"**Measured:** the categories do not separate: {found}, less than "
            f"{V.ABOVE_BASELINE:.0%} better.")


APART = {"cleanly": "apart", "partly": "only partly apart", "chance": "not apart"}


def gender_sentence(gender: E.Separation) -> str:
    """Female against male names alone, worded from the separation verdict's level."""
    v = V.separation_verdict(gender)
    return (f"**Female vs male names only:** silhouette {gender.silhouette:+.2f}, probe "
            f"{gender.probe_accuracy:.0%} (control {gender.control_accuracy:.0%}, chance "
            f"{gender.chance:.0%}): {APART[v.level]} in the embedding. In this world the only cue to a "
            "name's gender is the pronoun used for it later.")


def _separation(lm, space: str, tokens: E.TokenSet, sep: E.Separation) -> None:
    """The numbers first (measured in the full space), then the picture below them."""
    st.markdown(f"**Do the categories separate?** Measured in all {lm.cfg.d_model} dimensions, "
                "not in the picture.")
    silhouette, probe, control = st.columns(3)
    silhouette.metric("Silhouette (cosine)", f"{sep.silhouette:+.2f}", help="1: every token far closer to "
                      "its own category than to any other; 0: overlapping; below 0: mixed up.")
    probe.metric("Probe on new tokens", f"{sep.probe_accuracy:.0%}",
                 help=f"A linear probe's held-out accuracy: {sep.n_folds}-fold cross-validated logistic "
                      "regression, trained on some tokens of each category, tested on the others.")
    control.metric("Shuffled-label probe", f"{sep.control_accuracy:.0%}",
                   help="The control: what the same probe reaches on shuffled, meaningless labels.")
    st.caption(f"{sep.n_tokens} tokens in {sep.n_categories} categories; always guessing the largest "
               f"category scores {sep.chance:.0%}.")
    st.markdown(separation_sentence(sep))
    if lm.is_bundled and {"female names", "male names"} <= set(tokens.categories):
        names = [i for i, label in enumerate(tokens.labels) if label.endswith("male names")]
        gender = compute.separation(lm, space, tuple(tokens.ids[i] for i in names),
                                    tuple(tokens.labels[i] for i in names))
        st.markdown(gender_sentence(gender))


def neighbours(lm, is_open: bool) -> None:
    """The nearest tokens to one token, then analogies a - b + c with the world's answer ranked."""
    near = controls.neighbours(lm)
    if is_open and near.token is not None:
        _neighbour_tables(lm, near)
    st.markdown("**Analogies: a - b + c**, then the tokens nearest to the result (a, b, c left out).")
    chosen = controls.analogy(lm)
    if is_open and chosen.ready:
        _analogy(lm, chosen)


def _neighbour_tables(lm, near: controls.NeighbourControls) -> None:
    name = lm.to_str_tokens([near.token])[0]
    twins: list[str] = []
    for column, space in zip(st.columns(2), compute.SPACES, strict=True):
        found = compute.neighbours(lm, space, near.token, near.k)
        shown = lm.to_str_tokens(list(found.ids)) if found.ids else []
        twins += frames.space_twins(name, shown)
        column.markdown(f"**Nearest to {escape_markdown(frames.shown_token(name))} in the "
                        f"{compute.SPACES[space]}**")
        column.dataframe(frames.neighbour_frame(shown, found), hide_index=True,
                         height=min(38 + 35 * near.k, 600))
    notes = ["Tokens are shown in quotes: a leading space is part of a token."]
    for twin in dict.fromkeys(twins):
        notes.append(f"{escape_markdown(frames.shown_token(twin))} is the same word as "
                     f"{escape_markdown(frames.shown_token(name))} "
                     + ("without" if name.startswith(" ") else "with")
                     + " the leading space: a different token (the word at the start of a text, or "
                       "after a quote).")
    if lm.tied_embeddings:
        notes.append("This model ties its embedding and unembedding (W_U = W_E^T): one table does both "
                     "jobs, so the two lists are the same.")
    else:
        notes.append("Untied: W_E groups tokens that play similar roles as input, W_U tokens that are "
                     "predicted in similar contexts, so the lists can differ.")
    st.caption(" ".join(notes))


def _analogy(lm, chosen: controls.AnalogyControls) -> None:
    a, b, c = chosen.ids
    check = compute.analogy_check(lm, chosen.space, a, b, c)
    if check is not None:
        step = predict_first(ANALOGY, key="emb_predict_analogy", page="embeddings", model=lm.spec,
                             context=_digest(lm.spec, chosen.space, chosen.ids),
                             fields=dict(a=escape_markdown(chosen.words[0].strip()),
                                         b=escape_markdown(chosen.words[1].strip()),
                                         c=escape_markdown(chosen.words[2].strip()),
                                         truth=escape_markdown(check.truth)))
        if not step.ready:
            return
        step.reveal(check)
    found = compute.analogy(lm, chosen.space, a, b, c, chosen.answers)
    st.dataframe(frames.neighbour_frame(lm.to_str_tokens(list(found.ids)) if found.ids else [], found),
                 hide_index=True)
    if check is None:
        st.caption("Ground truth is checked for two kinds of analogy here: capital - country + country "
                   "(Paris - France + Italy) and pronoun - name + name (she - Mary + John).")
        return
    st.caption(f"Ground truth: {check.what} is {check.truth}: answer number {check.rank} of "
               f"{check.n_candidates}, {PLACES[check.place]}. Try the other kind too: capital - "
               "country + country (Paris - France + Italy) or pronoun - name + name (she - Mary + John).")


def band_sentence(b: V.PositionBand, top3: float, n_ctx: int) -> str:
    """What the learned position table's cosines show, from the band verdict."""
    pcs = f"the top three components hold **{top3:.0%}** of the variance of its {n_ctx} rows"
    if b.distance < 1:
        return f"**Measured:** W_pos has a single row, so there is no distance to compare; {pcs}."
    cos = (f"neighbouring positions of W_pos have cosine **{b.neighbour:.2f}** on average, positions "
           f"{b.distance} apart **{b.far:.2f}**")
    if b.band:
        seen = (f"Neighbours are {b.gap:.2f} more alike (at least {V.BAND_GAP:g} counts): the bright "
                "diagonal band on the heatmap, so the position vectors alone tell near from far.")
    else:
        seen = (f"Neighbours are only {b.gap:+.2f} more alike (under {V.BAND_GAP:g}): no bright diagonal "
                "band, so by cosine the position vectors alone do not tell near from far.")
    return f"**Measured:** {cos}; {pcs}. {seen}"


def positions(lm) -> None:
    n_ctx, d_model = min(lm.cfg.n_ctx, 2048), lm.cfg.d_model
    sinus = compute.sinusoidal_positions(n_ctx, d_model)
    if lm.W_pos is not None:
        learned = compute.learned_positions(lm)
        step = f" (every {learned['step']}th position)" if learned["step"] > 1 else ""
        left, right = st.columns(2)
        heat, lines = charts.HEATMAP_HEIGHT, charts.LINES_HEIGHT
        left.altair_chart(charts.cosine_heatmap(learned["cosine"], title=f"Learned W_pos: cosine{step}"),
                          width="stretch", height=heat)
        right.altair_chart(charts.cosine_heatmap(sinus["cosine"], title=f"Sinusoidal formula: cosine{step}"),
                           width="stretch", height=heat)
        left.altair_chart(charts.component_lines(learned["pcs"], title="Learned W_pos: top PCs"),
                          width="stretch", height=lines)
        right.altair_chart(charts.component_lines(sinus["pcs"], title="Sinusoidal: top PCs"), width="stretch",
                           height=lines)
        st.markdown(band_sentence(compute.position_band(lm), sum(learned["explained"]), learned["n_ctx"]))
        return
    rot = compute.rotary(lm)
    st.markdown("This model has **no position table**: it rotates queries and keys instead (rotary, RoPE), "
                "so there is no W_pos to draw.")
    if rot is not None:
        left, right = st.columns(2)
        left.markdown("**How fast each pair of dimensions turns**")
        left.altair_chart(charts.wavelength_chart(rot["waves"]), width="stretch", height=charts.LINES_HEIGHT)
        right.markdown("**q . k against distance, for a query equal to its key**")
        right.altair_chart(charts.distance_curve(rot["curve"]), width="stretch", height=charts.LINES_HEIGHT)
        st.caption(f"{rot['n_pairs']} rotating pairs in a head of {rot['d_head']} dimensions; one turn every "
                   f"{rot['fastest']:.1f} to {rot['slowest']:,.0f} positions.")
    left, _ = st.columns(2)
    left.altair_chart(charts.cosine_heatmap(sinus["cosine"], title="For comparison, sinusoidal: cosine"),
                      width="stretch", height=charts.HEATMAP_HEIGHT)
