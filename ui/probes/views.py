"""The probes page's views: the dataset, the score chart, layer details, the causal check, the
hand-off to steering and the ground truth. Every sentence about a result comes from ui.probes.words,
which words the verdicts of core.interp.probes.verdicts."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.probes import activations as probe_acts
from core.interp.probes import causal as probe_causal
from core.interp.probes import data as probe_data
from core.interp.probes import probe as probes
from core.interp.probes import verdicts
from core.interp.probes.data import ProbeDataError
from core.interp.probes.probe import ProbeReport
from core.models.hook_names import EMBEDDINGS, hook_label, stream_layer_of
from ui.common.handoff import Direction, send_direction
from ui.common.page import end_page, escape_markdown, how_it_is_computed, show_problem
from ui.probes import charts, words
from ui.probes import compute as run
from ui.probes import frames as F

PAPERS = (
    "Hewitt & Liang (2019), [*Designing and Interpreting Probes with Control Tasks*]"
    "(https://arxiv.org/abs/1909.03368)",
    "Belinkov (2022), [*Probing Classifiers: Promises, Shortcomings, and Advances*]"
    "(https://arxiv.org/abs/2102.12452)",
    "Alain & Bengio (2016), [*Understanding intermediate layers using linear classifier probes*]"
    "(https://arxiv.org/abs/1610.01644)",
    "Elazar et al. (2021), [*Amnesic Probing*](https://arxiv.org/abs/2006.00995); Ravfogel et al. "
    "(2020), [*Null It Out (INLP)*](https://arxiv.org/abs/2004.07667)",
    "Marks & Tegmark (2023), [*The Geometry of Truth*](https://arxiv.org/abs/2310.06824) "
    "(mass-mean vs regression directions)",
    "ARENA, [*Probing* exercises](https://github.com/callummcdougall/ARENA_3.0)",
)
# The page's question follows the dataset (a question, not a claim about the result).
QUESTIONS = {
    "gender": "Which layer knows the character's gender, and does removing that knowledge change the "
              "pronoun the model predicts?",
    "sentiment": "Which layer knows whether a feeling word is positive or negative, and does removing "
                 "that change which events the model expects next?",
    "colour": "Which layers know which colour was named, and is that more than remembering the word?",
    "place": "Which layers know which place was named, and where does the word's identity fade?",
    "position": "Which layers know where a word sits in its sentence?",
    "is_name": "Which layer knows that a word is a name, also for names the probe never saw?",
    "ioi": "From which layer on does the model know which name is the indirect object?",
    "csv": "Which layer makes your labels linearly readable, and is that more than memorising the words?",
}
# The answer key: what the world we wrote says about each dataset (facts of the data, not results).
GROUND_TRUTH = {
    "gender": "In the bundled world a name's gender shows **only** in the pronoun that follows "
              "(there is no \"girl\" or \"boy\"), so to predict \"she\" after \"Mary was happy because\" "
              "the model must look up the gender of the name. The probe reads the final token, whose "
              "embedding is the same word in every sentence: the gender has to be moved there by "
              "attention first.",
    "sentiment": "A story has one mood, and every feeling, action and event in it matches; the "
                 "feeling words come in two fixed lists of eight. Read at the feeling word, the "
                 "label is a function of the word itself.",
    "colour": "The label is the colour word itself: any layer that still carries the word's identity "
              "lets a probe pass. The control task gives each word a random label: if it is as "
              "learnable as the real one, the probe reads which word it was, not a colour feature.",
    "place": "As for colour, the label is the word itself; watch where the word identity fades.",
    "position": "The model has learned position embeddings: the stream at the embeddings already "
                "holds each token's position.",
    "is_name": "Names are one list of 60 words; held-out names are names the probe never saw, "
               "and a probe that generalises to them has found a \"name\" feature, not a word list.",
    "ioi": "The model must find the name that appears once; it learned this task (with these "
           "templates held out of its training). The answer is only computable at the end.",
}


def finish() -> None:
    """The "how it is computed" expander, then stop the script (used for early exits too)."""
    how_it_is_computed(probes, verdicts, probe_data, probe_acts, probe_causal, papers=PAPERS)
    end_page()


def load_dataset(source: str, n: int) -> probe_data.ProbeDataset | None:
    """The chosen dataset, or None after saying what is missing or wrong with an upload."""
    if source != "csv":
        return run.bundled(source, n)
    upload = st.file_uploader(
        "CSV with columns text, label and optionally token", type=["csv"], key="probes_csv",
        help="One row per example. `token` (optional) is a word of the text to read the activation "
             f"at; without it, the last token is read. At most {probe_data.MAX_ROWS:,} rows, "
             f"{probe_data.MAX_TEXT_CHARS:,} characters a text and "
             f"{probe_data.MAX_CSV_BYTES / 1e6:,.0f} MB.")
    st.download_button("Example CSV", run.SAMPLE_CSV, "probe_example.csv", "text/csv",
                       key="probes_sample", icon=":material/download:")
    if upload is None:
        st.info("Upload a CSV to probe your own labels. A link to this page keeps every setting but "
                "not the file.", icon=":material/upload_file:")
        return None
    try:
        data = run.from_csv(upload.getvalue(), upload.name[:120])
    except ProbeDataError as err:
        show_problem(f"{escape_markdown(upload.name[:120])}: {err}")
        return None
    st.caption(f"{escape_markdown(upload.name[:120])}: {data.about}.")
    return data


def planned_splits(data: probe_data.ProbeDataset) -> probes.Splits | None:
    """The train/test splits, checked before the model runs; None after saying why they fail."""
    try:
        return probes.plan_splits(data, run.SETTINGS.seed)
    except ProbeDataError as err:
        show_problem(str(err))
        return None


def foreign_model_note(lm, data: probe_data.ProbeDataset) -> None:
    """The bundled world's sentences on another model: plain English, unless words are unknown."""
    unknown = lm.unknown_words(" ".join(data.texts[:200]))
    if unknown:
        show_problem(f"{lm.name} does not know some words of these sentences ({', '.join(unknown[:8])}"
                     f"{'...' if len(unknown) > 8 else ''}): they become an unknown token, so "
                     "results for them mean little.")
    else:
        st.caption(f"These sentences come from the bundled world; to {lm.name} they are plain "
                   "English. The answer key below is for the bundled model only.")


def score_view(r: ProbeReport, index: int, data: probe_data.ProbeDataset) -> None:
    st.altair_chart(charts.score_chart(F.score_frame(r), r.metric, r.chance if r.target == "class"
                                       else None, F.layer_labels(r)[index]), width="stretch")
    held_out = ("whose names, sentence frames or templates it never saw" if data.is_test else
                "whose tokens (word types) it never saw" if data.char_spans else
                "(without a token column each text is its own word type: a random split)")
    st.caption(
        f"Each point is a {r.probe_kind} probe. **Held-out items**: trained on {r.n_train:,}, tested "
        f"on {r.n_test:,} examples {held_out}. **Seen items** and the **control task** (each word type "
        "gets a random label) use a random split where train and test share words; **selectivity** = "
        "seen - control. **Cross-validated**: folds on the training part, band = ±1 sd.")
    for note in r.notes:
        st.caption(f":material/info: {note}")
    with st.expander("All scores as a table"):
        st.dataframe(F.score_table(r), hide_index=True, width="stretch")


def layer_view(r: ProbeReport, index: int) -> None:
    """The held-out predictions and the directions' cosines side by side (one above the other when
    the confusion matrix has too many classes to fit half the page at 1024 px)."""
    left, right = st.columns(2) if len(r.classes) <= 6 else (st.container(), st.container())
    with left:
        st.markdown(f"**Held-out predictions at {words.layer_words(r.layers[index])}** "
                    f"({r.metric} {r.test_score[index]:.2f})")
        if r.target == "class":
            st.altair_chart(charts.confusion_chart(F.confusion_frame(r, index)))
        else:
            st.altair_chart(charts.regression_chart(F.regression_frame(r, index)))
    with right:
        st.markdown("**Cosine similarity of the probe directions across layers**")
        st.altair_chart(charts.cosine_chart(F.cosine_frame(r), F.layer_labels(r)), width="stretch")
        st.caption("Near 1: the layers write the property along the same direction; near 0: it "
                   "moved to a new one." + (" MLP neurons differ per layer, so only the diagonal "
                                            "means much here." if r.hook_names and "mlp.hook_post"
                                            in r.hook_names[0] else ""))


def causal_view(lm, r: ProbeReport, index: int, source: str) -> None:
    """The causal-check bars at the chosen layer, for attributes with a behaviour."""
    st.subheader("Does the model use it?")
    if source not in probe_causal.BEHAVIOURS:
        st.caption("The causal check is wired for **subject gender** (which pronoun comes next) and "
                   "**sentiment** (which events follow a feeling). Pick one of those datasets.")
        return
    hook = r.hook_names[index]
    try:
        result = run.causal(lm, source, hook, run.removed_directions(r, index))
    except ValueError as err:  # a behaviour word that is several tokens for this model
        show_problem(f"The causal check cannot run on {lm.name}: {err}")
        return
    behaviour = probe_causal.BEHAVIOURS[source](2)
    st.markdown(f"Remove the direction at `{hook}` ({hook_label(hook)}), at every position, while the "
                f"model reads prompts like *\"{behaviour.prompts[0]}\"*, and measure "
                f"{behaviour.description}.")
    st.altair_chart(charts.causal_chart(F.causal_frame(result), "mean score (higher: right side "
                                        "preferred)"), width="stretch")
    verdict = verdicts.causal_verdict(result)
    st.markdown(words.causal_sentence(verdict, behaviour, r.layers[index], result.n_removed))


def send_view(lm, r: ProbeReport, index: int, name: str) -> None:
    """Pick a direction (and a class for a multi-class probe) and send it to the steering page."""
    layer, hook = r.layers[index], r.hook_names[index]
    if stream_layer_of(hook) != layer:  # not a point of the residual stream
        st.caption("Steering adds a direction to the residual stream: pick the residual stream as the "
                   "hook site to send this probe's direction to the Steering page.")
        return
    st.caption(f"Send this direction to the Steering page, to push it into the model there instead of "
               f"removing it: it is added at `{hook}` ({hook_label(hook)}), the point it was read.")
    kinds = {"weights": f"probe weights ({r.probe_kind})",
             "means": "difference of class means" if r.target == "class" else "covariance with the value"}
    cols = st.columns(2)
    kind = cols[0].selectbox("Direction", list(kinds), format_func=kinds.get, key="probes_send_kind",
                             bind="query-params")
    rows = r.directions if kind == "weights" else r.mean_diff
    towards = r.classes[-1] if len(r.classes) == 2 else ""
    row = 0
    if len(r.classes) > 2:
        towards = cols[1].selectbox("Towards class", r.classes, key="probes_send_class",
                                    bind="query-params")
        row = r.classes.index(towards)
    vector = rows[index][row]
    label = (f"probe: {name}{' → ' + towards if towards else ''}, {words.layer_words(layer)} "
             f"({kinds[kind].split(' (')[0]})")
    if st.button("Send to steering", key="probes_send", icon=":material/send:"):
        send_direction(Direction(label, lm.spec, hook,
                                 (vector / max(np.linalg.norm(vector), 1e-12)).astype(np.float32),
                                 "probe"))
        st.success(f"Sent **{escape_markdown(label)}**: open the Steering page to push it into the "
                   "model.", icon=":material/check:")


def measured_key(r: ProbeReport, source: str) -> str:
    """The answer key's claims about scores, measured on this report: the control against the real
    labels (colour), the score from the first layer to the last (position); "" for the others."""
    if source == "colour":
        return " " + words.control_sentence(r, verdicts.readability(r))
    if source == "position":
        return " " + words.trend_sentence(r, verdicts.score_trend(r))
    return ""


def _at_embeddings(r: ProbeReport) -> str:
    """The scores at the embeddings, measured (for the answer keys that speak of them)."""
    if EMBEDDINGS not in r.layers:
        return ""
    i = r.index(EMBEDDINGS)
    chance = f" (chance {r.chance:.2f})" if r.target == "class" else ""
    return (f" Measured at the embeddings: held-out {r.metric} {r.test_score[i]:.2f}{chance}, control "
            f"{r.control_score[i]:.2f}, selectivity {r.selectivity[i]:.2f}.")


def notice_view(lm, r: ProbeReport, source: str) -> None:
    """Ground truth on the bundled model: where the property becomes readable, and (gender,
    sentiment) what removing the direction there does to the behaviour."""
    st.subheader("What to notice")
    readable = verdicts.readability(r)
    if not lm.is_bundled or source == "csv":
        st.markdown(words.readable_sentence(r, readable) + " Compare the held-out line with the "
                    "control: a probe that only memorises words scores well on seen items and on the "
                    "control.")
        return
    st.markdown(f"**The answer key.** {GROUND_TRUTH[source]}{_at_embeddings(r)}{measured_key(r, source)}")
    st.markdown(f"**What the probes found.** {words.readable_sentence(r, readable)}")
    if source in probe_causal.BEHAVIOURS:
        i = verdicts.detail_index(r)
        result = run.causal(lm, source, r.hook_names[i], run.removed_directions(r, i))
        behaviour = probe_causal.BEHAVIOURS[source](2)
        summary = words.causal_summary(verdicts.causal_verdict(result), behaviour, r.layers[i])
        st.markdown(f"**Does the model use it there?** {summary}")
