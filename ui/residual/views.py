"""Words and layout of the Residual stream page: every sentence that interprets a result is built
from a verdict in core.interp.residual.verdicts."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.residual import reads as R
from core.interp.residual import verdicts as V
from core.interp.residual.ground_truth import TaskTruth
from core.interp.residual.logit_lens import LensGrid
from core.interp.residual.tasks import TASK_WORDS, TASKS
from core.models.hook_names import layer_words
from ui.attention.compute import listed_heads
from ui.common.page import escape_markdown
from ui.common.remote import ask
from ui.residual import charts, compute, frames
from ui.residual.controls import Settings

VIEWS = ("Logit lens", "Tuned lens", "Direct logit attribution", "Stream anatomy", "Ground truth")
VIEW = "res_view"
MAX_COLUMNS = 24  # positions drawn at once in the lens grid


def where(layer: int | None) -> str:
    if layer is None:
        return "never"
    return layer_words(layer)


def _tok(text: str) -> str:
    return f"**{escape_markdown(repr(text))}**"


def readable_sentence(r: V.Readability, lens: str = "logit lens") -> str:
    answer = escape_markdown(r.answer)
    if r.first_layer is None:
        return f"Under the {lens}, {answer} never becomes the top prediction through to the output."
    i = list(r.layers).index(r.first_layer)
    if r.n_prompts == 1:
        return (f"Under the {lens}, {answer} is the top prediction at the last token from "
                f"**{where(r.first_layer)}** on (probability {r.answer_prob[i]:.2f} there"
                + (f"; {r.answer_prob[i - 1]:.2f} one point earlier)." if i > 0 else ")."))
    return (f"Under the {lens}, {answer} is on top for at least {V.READABLE_SHARE:.0%} of the "
            f"{r.n_prompts} prompts from **{where(r.first_layer)}** on ({r.share_top[i]:.0%} there"
            + (f", {r.share_top[i - 1]:.0%} one point earlier)." if i > 0 else ")."))


def lens_view(lm, grid: LensGrid, readable: V.Readability, s: Settings, title: str) -> None:
    decode = lambda i: lm.to_string([i])  # noqa: E731
    frame = frames.grid_frame(grid, decode)
    n = len(grid.str_tokens)
    if n > MAX_COLUMNS:  # a readable grid: MAX_COLUMNS positions at a time
        end = st.slider("Last position shown", MAX_COLUMNS - 1, n - 1, n - 1, key=f"res_window_{grid.lens}",
                        help=f"The grid shows {MAX_COLUMNS} positions at a time.")
        frame = frame[(frame["pos"] > end - MAX_COLUMNS) & (frame["pos"] <= end)]
    target = (f"P({escape_markdown(repr(s.answer))})" if s.colour_by == "answer"
              else "P(the text's next token; at the last token, the model's own answer)")
    st.altair_chart(charts.lens_grid(frame, f"{title}: colour = {target}; text = the top prediction"))
    has_kl = bool(np.isfinite(grid.kl_to_final).any())
    st.caption("Each cell: what the model would predict at that position if it stopped at that stream "
               f"point (hover for the top 5{' and the KL to the output' if has_kl else ''}). The last row "
               "is the model's own output.")
    if not has_kl:
        st.caption(f":material/cloud: {NO_KL}")
    st.markdown(readable_sentence(readable, "logit lens" if grid.lens == "logit" else "tuned lens"))


NO_KL = ("The lens was computed where the model is, and only the top 5 tokens and the target came back; "
         "the KL divergence to the output needs every token's probability, so it is not shown here.")
TUNED_LOCAL = ("The tuned lens runs on local models only: training it reads the stream of thousands of "
               "tokens at every layer, and applying it pushes translated streams through the final norm and "
               "the unembedding, both of which need the model's weights in this process. This model's "
               "weights are not here (it runs through nnsight{where}).")


def local_only(text: str) -> None:
    st.info(text, icon=":material/cloud_off:")


def tuned_view(lm, s: Settings, tokens: tuple[int, ...], targets: tuple[int, ...], sig: tuple,
               answer_words: str) -> None:
    if not R.has_weights(lm):
        local_only(TUNED_LOCAL.format(where=", on NDIF" if lm.is_remote else ""))
        return
    source = "corpus"
    text = ""
    if not lm.is_bundled:
        source = st.radio("Train it on", ["corpus", "text"], horizontal=True, key="res_tuned_source",
                          format_func={"corpus": "the bundled world's stories, as text",
                                       "text": "text I paste"}.get)
        if source == "text":
            text = st.text_area("Training text", key="res_tuned_text", height=140, max_chars=200_000,
                                placeholder="Paste a few paragraphs of ordinary text for this model.")
    key = compute.data_key(lm, source, text)
    record = compute.trained(lm, key)
    if record is None:
        steps = compute.default_settings(lm)["steps"]
        st.markdown(f"The tuned lens learns one small affine map per layer ({steps} training steps) so "
                    "that each layer's reading matches the model's output. Train it to see where the "
                    "logit lens misreads the stream.")
        if st.button("Train the tuned lens", key="res_tuned_train", type="primary", icon=":material/school:"):
            if source == "text" and not text.strip():
                st.warning("Paste some training text first: the box is empty.", icon=":material/warning:")
                return
            try:
                record = compute.train_live(lm, source, text)
            except ValueError as err:
                st.warning(str(err), icon=":material/warning:")
                return
        else:
            return
    st.caption(f"Trained on {record.source} in {record.seconds:.1f} s ({record.lens.steps_done_} steps).")
    st.altair_chart(charts.kl_chart(frames.kl_frame(record.kl)))
    st.markdown(lens_comparison_sentence(record.kl))
    grid = compute.lens_grid(lm, tokens, targets, key, sig)
    lens_view(lm, grid, _readable(grid, answer_words), s, "Tuned lens")


def _readable(grid: LensGrid, answer_words: str) -> V.Readability:
    return compute.readability(grid, answer_words)


def lens_comparison_sentence(kl: V.LensComparison) -> str:
    lines = []
    if kl.tuned_better_everywhere:
        lines.append("On held-out text the tuned lens is closer to the output than the logit lens at "
                     "every layer before the last (both are exact there).")
    else:
        worse = [where(p) for p, a, b in zip(kl.layers[:-1], kl.kl_logit[:-1], kl.kl_tuned[:-1], strict=True)
                 if b >= a]
        lines.append(f"On held-out text the tuned lens is **not** closer at {', '.join(worse)}: more "
                     "training, or more text, would help.")
    if kl.misread:
        worst = max(range(len(kl.layers) - 1), key=lambda i: kl.kl_logit[i] - kl.kl_tuned[i])
        lines.append(f"The logit lens misreads {', '.join(where(p) for p in kl.misread)} (KL at least "
                     f"{V.MISREAD_GAP:g} nat and {V.MISREAD_RATIO:g}x the tuned lens's): at "
                     f"{where(kl.layers[worst])} it is {kl.kl_logit[worst]:.2f} nats from the output, the "
                     f"tuned lens {kl.kl_tuned[worst]:.2f}. The information is there, in a basis the "
                     "unembedding does not read yet.")
    else:
        lines.append("Nowhere is the logit lens far worse than the tuned lens: where it is off, the tuned "
                     "lens is off too, so those layers do not hold the output in a linearly readable form.")
    return " ".join(lines)


def dla_view(result, s: Settings) -> None:
    ok = V.parts_sum_exactly(result)
    a, b = escape_markdown(repr(s.answer)), escape_markdown(repr(s.other))
    with st.container(horizontal=True):
        st.metric(f"logit({a}) - logit({b}), the model's own", f"{result.total:+.4f}")
        st.metric("Sum of the parts", f"{result.sum_of_parts:+.4f}")
        st.metric("Difference", f"{result.error:.1e}")
    st.markdown(
        "The parts add up to the model's own logit difference (the difference is rounding, within "
         f"{V.SUM_TOLERANCE:g} of its size)." if ok else
         f"**The parts do not add up** (difference {result.error:.2e}): something wrote to the stream "
         "outside the components listed.")
    left, right = st.columns([1, 1])
    left.altair_chart(charts.dla_bars(frames.dla_groups_frame(result), result.sum_of_parts))
    with right:
        st.altair_chart(charts.head_heatmap(frames.head_frame(result.head_table)))
        found = V.writers(result)
        st.markdown(writers_sentence(found, s.answer))
    st.altair_chart(charts.accumulated_line(frames.accumulated_frame(result), result.total))
    with st.expander("Every part", icon=":material/table:"):
        st.dataframe(frames.parts_table(result), hide_index=True,
                     column_config={"logit difference": st.column_config.NumberColumn(format="%+.5f")})


def writers_sentence(found: V.Writers, answer: str, quoted: bool = True) -> str:
    if not found.heads:
        return "No head pushes the answer up by much on its own: the MLPs and embeddings carry it."
    heads = ", ".join(f"**{L}.{h}** ({v:+.2f})" for (L, h), v in zip(found.heads, found.values, strict=True))
    what = escape_markdown(repr(answer) if quoted else answer)
    text = (f"Heads writing {what} directly: {heads} (each at least "
            f"{V.WRITER_FRACTION:.0%} of what all heads add in its favour; together "
            f"{found.heads_share:.0%} of the logit difference).")
    if found.against:
        against = ", ".join(f"**{L}.{h}** ({v:+.2f})" for (L, h), v in
                            zip(found.against, found.against_values, strict=True))
        text += f" Pushing as hard against it: {against}."
    return text


def anatomy_fits(lm, n_pos: int) -> bool:
    """Whether the anatomy can be read from this model; if not, says why (with the size)."""
    if R.anatomy_fits(lm, n_pos):
        return True
    local_only(f"The stream anatomy reads every layer's attention and MLP writes and the stream at every "
               f"position: for this model and prompt {R.anatomy_bytes(lm, n_pos) / 1e6:,.0f} MB, more than "
               f"the {R.MAX_READ_BYTES / 1e6:,.0f} MB a request to a model elsewhere may bring back. It runs "
               "on local models (and on small remote ones).")
    return False


def anatomy_view(a) -> None:
    verdict = V.anatomy_verdict(a)
    frame = frames.anatomy_frame(a)
    left, right = st.columns(2)
    left.altair_chart(charts.anatomy_norms(frame))
    right.altair_chart(charts.anatomy_cosines(frame))
    lines = []
    if verdict.exact_sum:
        lines.append(f"Embeddings + every write equals the final stream at every position (largest gap "
                     f"{a.sum_gap:.1e} of its size): the stream is exactly this sum.")
    else:
        lines.append(f"Embeddings + every write misses the final stream by up to {a.sum_gap:.1%} of its "
                     "size: an intervention adds to the stream directly.")
    lines.append(f"The largest write is **{verdict.largest}**.")
    if verdict.erasers:
        many = len(verdict.erasers) > 1
        lines.append(f"{', '.join(verdict.erasers)} point{'' if many else 's'} against the stream "
                     f"{'they read' if many else 'it reads'} (mean cosine at most {V.ERASE_COSINE:g}): "
                     f"{'they remove' if many else 'it removes'} part of what is there.")
    else:
        lines.append("No write points against the stream it reads (every mean cosine is above "
                     f"{V.ERASE_COSINE:g}).")
    st.markdown(" ".join(lines))
    st.caption(f"Means over {a.n_positions} positions (the beginning-of-text token left out).")


def truth_view(lm, lens_key: tuple | None, sig: tuple) -> None:
    listed = listed_heads(lm)
    if not R.has_weights(lm):
        st.caption(":material/cloud: Asked through small reads: the logit lens at each prompt's answer "
                   "position and direct logit attribution, computed where the model is (the tuned lens "
                   "runs on local models only).")
    for task in TASKS:
        try:
            truth: TaskTruth | None = ask(lm, f"The {TASK_WORDS[task]} task",
                                          lambda task=task: compute.task_truth(lm, task, lens_key, sig),
                                          key=f"res_truth_{task}")
        except ValueError as err:
            st.warning(str(err), icon=":material/warning:")
            continue
        if truth is None:
            continue
        words = TASK_WORDS[task]
        st.markdown(f"##### {words[0].upper() + words[1:]}: {truth.n_prompts} prompts")
        left, right = st.columns([1, 1])
        with left:
            results = [truth.logit] + ([truth.tuned] if truth.tuned is not None else [])
            st.altair_chart(charts.readability_chart(frames.readability_frame(*results)))
            for r in results:
                st.markdown(readable_sentence(r, f"{r.lens} lens"))
            if truth.tuned is None and R.has_weights(lm):
                st.caption("Train the tuned lens (its tab) to see this for both lenses.")
        with right:
            st.altair_chart(charts.head_heatmap(frames.head_frame(truth.dla.head_table),
                                                "Mean direct effect of each head"))
            st.markdown(writers_sentence(truth.writers, truth.dla.answer, quoted=False))
            if listed:
                st.markdown(report_sentence(V.check_heads(truth.writers, listed), listed))
            elif lm.is_bundled:
                st.caption("The evaluation report is missing, so there is nothing to compare with.")


def report_sentence(check: V.HeadCheck, listed: dict) -> str:
    kinds = ", ".join(f"{k.replace('_', '-')}: {', '.join(f'{r[0]}.{r[1]}' for r in rows) or 'none'}"
                      for k, rows in listed.items())
    named = "; ".join(f"{L}.{h} as {', '.join(k.replace('_', '-') for k in ks)}"
                      for (L, h), ks in check.listed_as.items())
    unlisted = ", ".join(f"{L}.{h}" for L, h in check.unlisted)
    if check.verdict == "no_writers":
        return f"No writer heads to check against the evaluation report ({kinds})."
    if check.verdict == "all_listed":
        return f"**The evaluation report agrees**: it lists every writer head ({named})."
    if check.verdict == "some_listed":
        return (f"**The report lists some of them**: {named}. Not listed under any type: {unlisted} "
                f"(the report lists {kinds}).")
    return (f"**None of the writer heads is in the evaluation report** ({unlisted}); it lists {kinds}. "
            "The report types heads by their attention on repeated tokens, so a head that moves names "
            "in IOI sentences need not be any of them.")
