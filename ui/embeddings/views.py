"""The Embeddings & positions page's three views: token geometry, neighbours and analogies, positions."""

from __future__ import annotations

import streamlit as st

from core.interp.embeddings import geometry as E
from core.interp.embeddings import positions as P
from core.world.datasets import token_groups
from ui.common.page import show_problem
from ui.embeddings import charts, compute

VIEWS = ("Token geometry", "Neighbours & analogies", "Positions")
TYPED_GROUPS = (
    "colours: red, blue, green, yellow, black, white, purple, orange\n"
    "animals: dog, cat, horse, cow, sheep, lion, mouse, bird\n"
    "numbers: one, two, three, four, five, six, seven, eight\n"
    "countries: France, Germany, Italy, Spain, Japan, China, Canada, Egypt\n"
    "verbs: ran, walked, ate, saw, took, gave, made, said"
)
METHODS = {"pca": "PCA", "tsne": "t-SNE"}


def _space(lm) -> str:
    if lm.tied_embeddings:
        return "embedding"
    return st.radio("Which matrix", list(compute.SPACES), format_func=compute.SPACES.get, horizontal=True,
                    key="emb_space", bind="query-params",
                    help="Untied models have two token tables: W_E reads tokens in, W_U writes "
                         "predictions out.")


def _groups(lm) -> dict[str, tuple[str, ...]] | None:
    if lm.is_bundled:
        groups = token_groups()
        chosen = st.multiselect("Categories (from the world's grammar)", list(groups), default=list(groups),
                                key="emb_categories", bind="query-params")
        return {name: groups[name] for name in chosen}
    text = st.text_area("Categories, one per line as `category: word, word, ...`", value=TYPED_GROUPS,
                        key="emb_groups", bind="query-params", height=140)
    try:
        return {k: tuple(v) for k, v in E.parse_groups(text or "").items()}
    except ValueError as err:
        show_problem(str(err))
        return None


def geometry(lm) -> None:
    groups = _groups(lm)
    if groups is None:
        return
    left, middle, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    with left:
        method = st.segmented_control("Projection", list(METHODS), format_func=METHODS.get, default="pca",
                                      required=True, key="emb_method", bind="query-params")
    with middle:
        space = _space(lm)
    with right:
        labels = st.toggle("Write the tokens", key="emb_labels")
    tokens = compute.token_set(lm, lm.spec, tuple(groups.items()))
    if tokens.dropped:
        st.caption("Left out (not one known token of this model, or repeated): " + ", ".join(tokens.dropped))
    if len(tokens.ids) < 3 or len(tokens.categories) < 2:
        show_problem("Give at least two categories and three tokens in all to draw and compare them.")
        return
    projection = compute.projection(lm, lm.spec, space, tokens.ids, method)
    if projection.explained:
        axes = [f"PC{i + 1} ({share:.0%} of the variance)" for i, share in enumerate(projection.explained)]
    else:
        axes = ["t-SNE 1", "t-SNE 2"]
    plot, numbers = st.columns([3, 1])
    plot.altair_chart(charts.token_scatter(compute.scatter_frame(tokens, projection), x_title=axes[0],
                                           y_title=axes[1], categories=list(tokens.categories),
                                           labels=labels), width="stretch")
    with numbers:
        _separation(lm, space, tokens)


def _separation(lm, space: str, tokens: E.TokenSet) -> None:
    st.markdown(f"**Do the categories separate?** Measured in all {lm.cfg.d_model} dimensions, "
                "not in the picture.")
    try:
        sep = compute.separation(lm, lm.spec, space, tokens.ids, tokens.labels)
    except ValueError as err:
        show_problem(str(err))
        return
    st.metric("Silhouette (cosine)", f"{sep.silhouette:+.2f}", help="1: every token far closer to its own "
              "category than to any other; 0: overlapping; below 0: mixed up.")
    st.metric("Linear probe, held-out tokens", f"{sep.probe_accuracy:.0%}",
              help=f"{sep.n_folds}-fold cross-validated logistic regression: trained on some tokens of each "
                   "category, tested on the others.")
    st.metric("Same probe, shuffled labels", f"{sep.control_accuracy:.0%}",
              help="The control: what the probe reaches on meaningless labels.")
    st.caption(f"{sep.n_tokens} tokens in {sep.n_categories} categories; always guessing the largest "
               f"category scores {sep.chance:.0%}.")
    if lm.is_bundled and {"female names", "male names"} <= set(tokens.categories):
        names = [i for i, label in enumerate(tokens.labels) if label.endswith("male names")]
        gender = compute.separation(lm, lm.spec, space, tuple(tokens.ids[i] for i in names),
                                    tuple(tokens.labels[i] for i in names))
        st.markdown(f"**Female vs male names only:** silhouette {gender.silhouette:+.2f}, probe "
                    f"{gender.probe_accuracy:.0%} (control {gender.control_accuracy:.0%}). In this world the "
                    "only cue to a name's gender is the pronoun used for it later.")


def _word(lm, label: str, default: str, key: str, column) -> int | None:
    word = column.text_input(label, value=default, key=key, bind="query-params")
    token = E.word_token_id(lm.tokenizer, word or "")
    if token is None:
        column.warning(f"{word!r} is not one known token of this model.", icon=":material/warning:")
    return token


def neighbours(lm) -> None:
    left, right = st.columns([2, 1])
    token = _word(lm, "Token", "Mary" if lm.is_bundled else "cat", "emb_word", left)
    k = right.slider("Neighbours", 5, 30, 10, key="emb_k", bind="query-params")
    if token is not None:
        name = lm.to_str_tokens([token])[0]
        columns = st.columns(2)
        for column, space in zip(columns, compute.SPACES, strict=True):
            found = compute.neighbours(lm, lm.spec, space, token, k)
            column.markdown(f"**Nearest to {name!r} in the {compute.SPACES[space]}**")
            column.dataframe(compute.neighbour_frame(lm, found), hide_index=True,
                             height=min(38 + 35 * k, 600))
        if lm.tied_embeddings:
            st.caption("This model ties its embedding and unembedding (W_U = W_E^T): one table does both "
                       "jobs, so the two lists are the same.")
        else:
            st.caption("Untied: W_E groups tokens that play similar roles as input, W_U tokens that are "
                       "predicted in similar contexts, so the lists can differ.")
    st.markdown("**Analogies: a - b + c**, then the tokens nearest to the result (a, b, c left out).")
    a_col, b_col, c_col, k_col = st.columns(4)
    a, b, c = (("she", "Mary", "John") if lm.is_bundled else ("king", "man", "woman"))
    a = _word(lm, "a", a, "emb_a", a_col)
    b = _word(lm, "minus b", b, "emb_b", b_col)
    c = _word(lm, "plus c", c, "emb_c", c_col)
    top_k = k_col.slider("Answers", 1, 10, 5, key="emb_analogy_k")
    if None in (a, b, c):
        return
    space = "embedding" if lm.tied_embeddings else st.radio(
        "Analogy in", list(compute.SPACES), format_func=compute.SPACES.get, horizontal=True,
        key="emb_analogy_space")
    found = compute.analogy(lm, lm.spec, space, a, b, c, top_k)
    st.dataframe(compute.neighbour_frame(lm, found), hide_index=True)
    _analogy_truth(lm, a, b, c)


def _analogy_truth(lm, a: int, b: int, c: int) -> None:
    """On the bundled model: where the world's true answer to a - b + c ranks among every token."""
    if not lm.is_bundled:
        return
    found = E.world_analogy_answer(*(s.strip() for s in lm.to_str_tokens([a, b, c])))
    if found is None:
        st.caption("Ground truth is checked for two kinds of analogy here: capital - country + country "
                   "(Paris - France + Italy) and pronoun - name + name (she - Mary + John).")
        return
    truth, what = found
    everything = compute.analogy(lm, lm.spec, "embedding", a, b, c, lm.cfg.d_vocab)
    ranked = [t.strip() for t in lm.to_str_tokens(list(everything.ids))]
    where = f"answer number {ranked.index(truth) + 1} of {len(ranked)}" if truth in ranked else "not found"
    st.caption(f"Ground truth: {what} is {truth}: {where}. Try the other kind too: capital - country + "
               "country (Paris - France + Italy) or pronoun - name + name (she - Mary + John).")


def positions(lm) -> None:
    n_ctx, d_model = min(lm.cfg.n_ctx, 2048), lm.cfg.d_model
    sinus = compute.sinusoidal_positions(n_ctx, d_model)
    if lm.W_pos is not None:
        learned = compute.learned_positions(lm, lm.spec)
        step = f" (every {learned['step']}th position)" if learned["step"] > 1 else ""
        left, right = st.columns(2)
        left.altair_chart(charts.cosine_heatmap(learned["cosine"], title=f"Learned W_pos: cosine{step}"),
                          width="content")
        right.altair_chart(charts.cosine_heatmap(sinus["cosine"], title=f"Sinusoidal formula: cosine{step}"),
                           width="content")
        left.altair_chart(charts.component_lines(learned["pcs"],
                                                 title="Learned W_pos: top principal components"))
        right.altair_chart(charts.component_lines(sinus["pcs"], title="Sinusoidal: top principal components"))
        W = lm.W_pos.detach().float().numpy()[: min(len(lm.W_pos), 1024)]
        near = P.cosine_by_distance(W)
        far = min(len(near) - 1, 32)
        st.markdown(f"**Measured:** neighbouring positions of W_pos have cosine **{near[1]:.2f}** on "
                    f"average, positions {far} apart **{near[far]:.2f}**; the top three components hold "
                    f"**{sum(learned['explained']):.0%}** of the variance of its {learned['n_ctx']} rows. "
                    "A bright diagonal band is a model that can tell near from far by position alone.")
        return
    rot = compute.rotary(lm, lm.spec)
    st.markdown("This model has **no position table**: it rotates queries and keys instead (rotary, RoPE), "
                "so there is no W_pos to draw.")
    if rot is not None:
        left, right = st.columns(2)
        left.markdown("**How fast each pair of dimensions turns**")
        left.altair_chart(charts.wavelength_chart(rot["waves"]))
        right.markdown("**q . k against distance, for a query equal to its key**")
        right.altair_chart(charts.distance_curve(rot["curve"]))
        st.caption(f"{rot['n_pairs']} rotating pairs in a head of {rot['d_head']} dimensions; one turn every "
                   f"{rot['fastest']:.1f} to {rot['slowest']:,.0f} positions.")
    st.altair_chart(charts.cosine_heatmap(sinus["cosine"], title="For comparison, sinusoidal: cosine"),
                    width="content")
