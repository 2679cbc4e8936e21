"""Sparse autoencoders: train one live on the model's activations and check its features against
the bundled world's known attributes."""

import pandas as pd
import streamlit as st

from core.interp.sae import features as sae_features
from core.interp.sae import loss as sae_loss
from core.interp.sae import model as sae_model
from core.interp.sae import splice as sae_splice
from core.interp.sae import train as sae_train
from ui.common.models import current_model
from ui.common.page import how_it_is_computed, page_header, show_problem
from ui.sae.charts import ground_truth_chart, sweep_chart, training_curves
from ui.sae.compute import POINTS_KEY, RUN_KEY, history_frame, recover_interrupted, run_sweep, train_live
from ui.sae.controls import answer_key, training_form
from ui.sae.dashboard import feature_browser
from ui.sae.files import download, upload

THRESHOLD = 0.9
lm = current_model()
page_header(
    "Sparse autoencoders",
    "A model stores far more concepts than it has dimensions. A **sparse autoencoder** (SAE) rewrites "
    "each activation as a sum of a *few* directions from a dictionary much larger than the model's "
    "width, hoping each direction is one concept. Train one here in under a minute, see what its "
    "features fire on, and check them against the words we know the bundled world contains.",
    "How much of the known structure (colours, places, names, moods...) does an SAE find on its "
    "own, and how does that change as we make it sparser?",
)
recover_interrupted(lm)
experiment, submitted = training_form(lm)
if submitted:
    train_live(lm, experiment)

run = st.session_state.get(RUN_KEY)
if run is not None and run.sae.cfg.model_spec not in ("", lm.spec):
    show_problem(f"The last SAE was trained on {run.sae.cfg.model_spec!r}, not on {lm.name}. "
                 "Train a new one for this model.")
    run = None
if run is None:
    st.info("Press **Train SAE** to train one with these settings (about 10 to 40 seconds on the "
            "bundled model), or load a saved SAE below.", icon=":material/arrow_upward:")
    st.markdown("**The answer key.** The bundled world's word lists. The SAE never sees these "
                "labels; after training, each list is matched with the feature that picks out its "
                "words best (tokens: the spellings that are one token for this model).")
    st.dataframe(answer_key(lm), hide_index=True)
    upload(lm)
    how_it_is_computed(sae_model, sae_train, sae_loss, sae_splice, sae_features, papers=sae_features.PAPERS)
    st.stop()

report = run.report
where = f"`{run.sae.cfg.hook_name}`, {run.sae.cfg.d_sae:,} features ({run.sae.cfg.expansion:g}x)"
if run.stopped:
    st.warning(f"Training was stopped at step {run.steps:,}; this is the SAE as it was then.",
               icon=":material/stop_circle:")

# -- the headline: what it found ------------------------------------------------------------------
st.subheader(f"It found {report.n_found} of {len(report.matches)} known attributes")
st.caption(f"{run.experiment.label() if run.experiment else 'Uploaded SAE'} · {where}. For each "
           f"attribute: the single feature that best separates its tokens from all others on held-out "
           f"text (AUROC; found at {THRESHOLD}).")
matches = pd.DataFrame([{
    "attribute": m.attribute, "tokens": m.n_tokens, "feature": m.feature, "auroc": m.auroc,
    "precision": m.precision, "recall": m.recall, "status": "found" if m.found else "not found",
} for m in report.matches])
left, right = st.columns([1, 1])
left.altair_chart(ground_truth_chart(matches, THRESHOLD))
right.dataframe(matches.assign(found=matches["status"] == "found").drop(columns=["status", "tokens"]),
                hide_index=True,
                height=35 * len(matches) + 38, column_config={
                    "auroc": st.column_config.NumberColumn("AUROC", format="%.3f"),
                    "precision": st.column_config.NumberColumn(format="%.2f"),
                    "recall": st.column_config.NumberColumn(format="%.2f")})
if lm.is_bundled:
    st.markdown(
        "**What to notice.** At the default settings the SAE gives several of the world's word "
        "lists a feature of their own (the two moods, colours, places), each detected by a single "
        "feature with an AUROC above 0.9. Names are the hardest: the model learns a name's gender "
        "only from the pronouns that follow it, and the SAE spends its features on single names or "
        "small groups. Now run the sweep: the *sparser* the SAE (higher L1, lower k), the *fewer* "
        "attributes it finds. Allowed only a few active features per token, it gives frequent "
        "words features of their own rather than a broad *colour* feature plus a word feature "
        "(feature splitting): it still reconstructs well, but the category is no longer one "
        "direction. At the dense end, check the precision column: a feature that fires on many "
        "tokens can reach a high AUROC and still be a poor detector.")
else:
    st.caption("The attributes are the bundled world's word lists, looked up in this model's "
               "vocabulary; only words that are a single token count.")

r, s = report.recon, report.splice
with st.container(horizontal=True):
    st.metric("Explained variance", f"{r.explained_variance:.3f}", help="1 - MSE / variance, held-out")
    st.metric("L0", f"{r.l0:.1f}", help="Active features per token, held-out")
    st.metric("Dead features", f"{r.dead_fraction:.1%}", help="Never fire on the held-out text")
    st.metric("MSE", f"{r.mse:.3g}")
    if s is not None:
        st.metric("CE clean / spliced / zeroed", f"{s.clean:.2f} / {s.spliced:.2f} / {s.zero:.2f}",
                  help="Next-token cross-entropy (nats) with the real activations, the SAE's "
                       "reconstruction, and zeros")
        st.metric("CE loss recovered", f"{s.recovered:.1%}", help="(zeroed - spliced) / (zeroed - clean)")
if run.history:
    with st.expander("Training curves", icon=":material/show_chart:"):
        st.caption(f"{run.seconds:.1f} s, {run.acts_per_second:,.0f} activations per second.")
        st.altair_chart(training_curves(history_frame(run.history)))

# -- the sweep ------------------------------------------------------------------------------------
st.subheader("Sparsity against reconstruction")
st.markdown("Each point is one SAE. Sparser SAEs (lower L0) reconstruct less; where on this curve "
            "do the known attributes show up? The sweep trains five short SAEs like the one above, "
            "with L1 (or k) varied.")
if st.button("Run a sweep (5 SAEs)", key="sae_sweep", icon=":material/linear_scale:"):
    run_sweep(lm, run.experiment or experiment)
points = [p for p in st.session_state.get(POINTS_KEY, [])
          if (p["hook"], p["model"]) == (run.sae.cfg.hook_name, lm.spec)]
if points:
    sweep_arch = next((p["architecture"] for p in points if p["source"] == "sweep"), "relu")
    st.altair_chart(sweep_chart(pd.DataFrame(points), "k" if sweep_arch == "topk" else "L1 coefficient"))

# -- the features ---------------------------------------------------------------------------------
st.subheader("Features")
feature_browser(lm, run)

st.subheader("Save or load")
download(run)
upload(lm)
how_it_is_computed(sae_model, sae_train, sae_loss, sae_splice, sae_features, papers=sae_features.PAPERS)
