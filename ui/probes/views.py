"""The probes page's views: dataset choice, score chart, layer details, causal check, ground truth."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.probes import activations as probe_acts
from core.interp.probes import causal as probe_causal
from core.interp.probes import data as probe_data
from core.interp.probes import probe as probes
from core.interp.probes.data import BUNDLED, ProbeDataError
from core.interp.probes.probe import ProbeReport
from ui.common.handoff import Direction, send_direction
from ui.common.page import how_it_is_computed, show_problem
from ui.probes import charts
from ui.probes import compute as run
from ui.probes import frames as F

SOURCES = (*BUNDLED, "csv")
SITE_LABELS = {"resid": "residual stream", "attn_out": "attention output", "mlp_out": "MLP output",
               "mlp_post": "MLP neurons"}
POSITION_LABELS = {"last": "last token", "marked": "marked token", "mean": "mean over tokens"}
DIRECTION_KINDS = {"probe weights removed": "probe weights (logistic regression)",
                   "class-mean difference removed": "difference of class means"}
PAPERS = (
    "Hewitt & Liang (2019), *Designing and Interpreting Probes with Control Tasks*",
    "Belinkov (2022), *Probing Classifiers: Promises, Shortcomings, and Advances*",
    "Alain & Bengio (2016), *Understanding intermediate layers using linear classifier probes*",
    "Elazar et al. (2021), *Amnesic Probing*; Ravfogel et al. (2020), *Null It Out (INLP)*",
    "Marks & Tegmark (2023), *The Geometry of Truth* (mass-mean vs regression directions)",
    "ARENA, *Probing* exercises",
)
# The answer key: what the world we wrote says about each dataset.
GROUND_TRUTH = {
    "gender": "In the bundled world a name's gender shows **only** in the pronoun that follows "
              "(there is no \"girl\" or \"boy\"), so to predict \"she\" after \"Mary was happy because\" "
              "the model must look up the gender of the name. At the final token it has to be moved "
              "there by attention first: it cannot be read off the embeddings (layer 0).",
    "sentiment": "A story has one mood, and every feeling, action and event in it matches; the "
                 "feeling words come in two fixed lists of eight. Read at the feeling word, the "
                 "label is a function of the word itself.",
    "colour": "The label is the colour word itself: any layer that still carries the word's identity "
              "passes. The control task is just as easy here, so selectivity is near zero: "
              "high accuracy alone proves nothing.",
    "place": "As for colour, the label is the word itself; watch where the word identity fades.",
    "position": "The model has learned position embeddings, so layer 0 already holds the position; "
                "later layers mix it with content.",
    "is_name": "Names are one list of 60 words; held-out names are names the probe never saw, "
               "and a probe that generalises to them has found a \"name\" feature, not a word list.",
    "ioi": "The model must find the name that appears once; it learned this task (with these "
           "templates held out of its training). The answer is only computable at the end.",
}


def source_label(source: str) -> str:
    return "Your CSV (text, label, token)" if source == "csv" else BUNDLED[source].title


def finish() -> None:
    """The "how it is computed" expander, then stop the script (used for early exits too)."""
    how_it_is_computed(probes, probe_data, probe_acts, probe_causal, papers=PAPERS)
    st.stop()


def load_dataset(source: str, n: int) -> tuple[probe_data.ProbeDataset | None, str]:
    """(dataset, identity for the run button), or (None, "") after saying what is missing."""
    if source != "csv":
        return run.bundled(source, n), f"{source}-{n}"
    upload = st.file_uploader("CSV with columns text, label and optionally token", type=["csv"],
                              key="probes_csv",
                              help="One row per example. `token` (optional) is a word of the text "
                                   "to read the activation at; without it, the last token is read. "
                                   f"At most {probe_data.MAX_ROWS:,} rows.")
    st.download_button("Example CSV", run.SAMPLE_CSV, "probe_example.csv", "text/csv",
                       key="probes_sample", icon=":material/download:")
    if upload is None:
        st.info("Upload a CSV to probe your own labels.", icon=":material/upload_file:")
        return None, ""
    try:
        data = run.from_csv(upload.getvalue(), upload.name)
    except ProbeDataError as err:
        show_problem(f"{upload.name}: {err}")
        return None, ""
    st.caption(f"{upload.name}: {data.about}.")
    return data, f"csv-{upload.file_id}"


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


def score_view(r: ProbeReport, layer: int, data: probe_data.ProbeDataset) -> None:
    st.altair_chart(charts.score_chart(F.score_frame(r), r.metric, r.chance if r.target == "class"
                                       else None, r.layer_labels[layer]), width="stretch")
    held_out = ("whose names, sentence frames or templates it never saw" if data.is_test else
                "whose tokens (word types) it never saw" if data.char_spans else
                "(without a token column each text is its own word type: a random split)")
    st.caption(
        f"**Held-out items**: trained on {r.n_train:,}, tested on {r.n_test:,} examples {held_out}. "
        "**Seen items** and the **control task** (each word type gets "
        "a random label) use a random split where train and test share words; **selectivity** = seen "
        "- control. **Cross-validated**: folds on the training part, band = ±1 sd."
        + (f" Dotted line: chance ({r.chance:.2f})." if r.target == "class" else ""))
    for note in r.notes:
        st.caption(f":material/info: {note}")
    with st.expander("All scores as a table"):
        st.dataframe(F.score_table(r), hide_index=True, width="stretch")


def layer_view(r: ProbeReport, layer: int) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Held-out predictions at layer {r.layer_labels[layer]}** "
                    f"({r.metric} {r.test_score[layer]:.2f})")
        if r.target == "class":
            st.altair_chart(charts.confusion_chart(F.confusion_frame(r, layer)))
        else:
            st.altair_chart(charts.regression_chart(F.regression_frame(r, layer)))
    with right:
        st.markdown("**Cosine similarity of the probe directions across layers**")
        st.altair_chart(charts.cosine_chart(F.cosine_frame(r), list(r.layer_labels)))
        st.caption("Near 1: the layers write the property along the same direction; near 0: it "
                   "moved to a new one." + (" MLP neurons differ per layer, so only the diagonal "
                                            "means much here." if r.hook_names and "mlp.hook_post"
                                            in r.hook_names[0] else ""))


def causal_view(lm, r: ProbeReport, layer: int, source: str) -> None:
    """The causal-check bars at the chosen layer, for attributes with a behaviour."""
    st.subheader("Does the model use it?")
    if source not in probe_causal.BEHAVIOURS:
        st.caption("The causal check is wired for **subject gender** (which pronoun comes next) and "
                   "**sentiment** (which events follow a feeling). Pick one of those datasets.")
        return
    directions = {"probe weights removed": r.directions[layer],
                  "class-mean difference removed": r.mean_diff[layer]}
    try:
        result = run.causal(lm, lm.spec, source, r.hook_names[layer], directions)
    except ValueError as err:  # a behaviour word that is several tokens for this model
        show_problem(f"The causal check cannot run on {lm.name}: {err}")
        return
    behaviour = probe_causal.BEHAVIOURS[source](2)
    st.markdown(f"Remove the direction at `{r.hook_names[layer]}` (every position) while the model "
                f"reads prompts like *\"{behaviour.prompts[0]}\"*, and measure "
                f"{behaviour.description}.")
    st.altair_chart(charts.causal_chart(F.causal_frame(result), "mean score (higher: right side "
                                        "preferred)"), width="stretch")
    st.markdown(F.causal_sentence(result, r.layer_labels[layer]))


def send_view(lm, r: ProbeReport, layer: int, name: str) -> None:
    """Pick a direction (and a class for a multi-class probe) and send it to the steering page."""
    st.caption("Send this layer's direction to the Steering page, to push it into the model "
               "instead of removing it.")
    cols = st.columns([2, 2, 2], vertical_alignment="bottom")
    kinds = dict(DIRECTION_KINDS)
    if r.target == "numeric":
        kinds = {"probe weights removed": "probe weights (ridge regression)",
                 "class-mean difference removed": "covariance with the value"}
    kind = cols[0].selectbox("Direction", list(kinds), format_func=kinds.get, key="probes_send_kind")
    rows = r.directions if kind == "probe weights removed" else r.mean_diff
    towards = r.classes[-1] if len(r.classes) == 2 else ""
    row = 0
    if len(r.classes) > 2:
        towards = cols[1].selectbox("Towards class", r.classes, key="probes_send_class")
        row = r.classes.index(towards)
    vector = rows[layer][row]
    label = (f"probe: {name}{' → ' + towards if towards else ''}, layer {r.layer_labels[layer]} "
             f"({kinds[kind].split(' (')[0]})")
    if cols[2].button("Send to steering", key="probes_send", icon=":material/send:"):
        send_direction(Direction(label, lm.spec, r.hook_names[layer],
                                 (vector / max(np.linalg.norm(vector), 1e-12)).astype(np.float32),
                                 "probe"))
        st.success(f"Sent **{label}**: open the Steering page to push it into the model.",
                   icon=":material/check:")


def notice_view(lm, r: ProbeReport, source: str) -> None:
    """Ground truth on the bundled model: where the property becomes readable, and (gender,
    sentiment) what removing the direction there does to the behaviour."""
    st.subheader("What to notice")
    if not lm.is_bundled or source == "csv":
        st.markdown(F.readable_sentence(r) + " Compare the held-out line with the control: a "
                    "probe that only memorises words scores well on seen items and on the control.")
        return
    st.markdown(f"**The answer key.** {GROUND_TRUTH[source]}")
    st.markdown(f"**What the probes found.** {F.readable_sentence(r)}")
    if source in probe_causal.BEHAVIOURS:
        i = F.detail_layer(r)
        directions = {"probe weights removed": r.directions[i],
                      "class-mean difference removed": r.mean_diff[i]}
        result = run.causal(lm, lm.spec, source, r.hook_names[i], directions)
        st.markdown(f"**Does the model use it there?** {F.causal_summary(result, r.layer_labels[i])}")
