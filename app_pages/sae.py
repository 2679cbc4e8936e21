"""Sparse autoencoders: train one live on the model's activations and check its features against
the bundled world's known attributes."""

import pandas as pd
import streamlit as st

from core.interp.sae import features as sae_features
from core.interp.sae import file_format as sae_files
from core.interp.sae import loss as sae_loss
from core.interp.sae import model as sae_model
from core.interp.sae import splice as sae_splice
from core.interp.sae import train as sae_train
from core.interp.sae import verdict as sae_verdict
from core.models.dtype import fastest_matmul_dtype
from core.notebook.questions.sae import HOW_MANY_FOUND, N_ATTRIBUTES
from ui.common.models import current_model
from ui.common.page import how_it_is_computed, page_header, show_problem
from ui.common.predict import predict_first
from ui.sae import views
from ui.sae.charts import sweep_chart, training_curves
from ui.sae.compute import answer_key
from ui.sae.controls import MEASURED_DEFAULT_S, training_form, where_to_read
from ui.sae.dashboard import feature_browser
from ui.sae.files import download, upload
from ui.sae.frames import history_frame
from ui.sae.training import (
    POINTS_KEY,
    RUN_KEY,
    check_training_fits,
    recover_interrupted,
    run_sweep,
    sweep_values,
    sweep_verdict_of,
    train_live,
)

lm = current_model()
page_header(
    "Sparse autoencoders",
    "A model stores far more concepts than it has dimensions. A **sparse autoencoder** (SAE) rewrites "
    "each activation as a sum of a *few* directions from a dictionary much larger than the model's "
    "width, hoping each direction is one concept. Train one here, see what its features fire on, and "
    "check them against the words we know the bundled world contains.",
    "How much of the known structure (colours, places, names, moods...) does an SAE find on its "
    "own, and how does that change as we make it sparser?",
)
recover_interrupted(lm)
hook = where_to_read(lm)
experiment, submitted = training_form(lm, hook)
if submitted:
    try:
        check_training_fits(lm, experiment)
        train_live(lm, experiment)
    except ValueError as err:  # the session's memory budget, or activations the hook cannot give
        show_problem(str(err))

run = st.session_state.get(RUN_KEY)
if run is not None and run.sae.cfg.model_spec not in ("", lm.spec):
    show_problem(f"The last SAE was trained on {run.sae.cfg.model_spec!r}, not on {lm.name}. "
                 "Train a new one for this model.")
    run = None
context = f"{lm.spec}|{run.key if run else experiment.key()}"  # the result it is graded on
step = predict_first(HOW_MANY_FOUND, key="sae_predict", context=context, page="sae", model=lm.spec,
                     fields={"n": N_ATTRIBUTES})

if run is None:
    dtype = "bfloat16" if fastest_matmul_dtype().use_bf16 else "float32"
    took = (f" On the bundled model, the default settings took about {MEASURED_DEFAULT_S[dtype]:.0f} s from "
            f"the press to the result (measured on one CPU thread with {dtype} matrix products, the format "
            f"this server measured faster)." if lm.is_bundled else "")
    st.info(f"Press **Train SAE** to train one with these settings, or load a saved SAE below.{took}",
            icon=":material/arrow_upward:")
    st.markdown("**The answer key.** The bundled world's word lists. The SAE never sees these labels; "
                "after training, each list is matched with the feature that picks out its words best "
                "(single tokens: the spellings that are one token for this model).")
    views.answer_key_table(answer_key(lm))
elif not step.ready:
    st.info("Lock or skip your prediction above to see what this SAE found.", icon=":material/lock:")
else:
    if run.stopped:
        st.warning(f"Training was stopped at step {run.steps:,}; this is the SAE as it was then.",
                   icon=":material/stop_circle:")
    step.reveal(run.report)
    views.headline(run)
    points = [p for p in st.session_state.get(POINTS_KEY, [])
              if (p["hook"], p["model"]) == (run.sae.cfg.hook_name, lm.spec)]
    views.what_to_notice(run.report.findings, bundled=lm.is_bundled)
    views.metrics(run)
    if run.history:
        st.caption(f":material/timer: Trained in {run.seconds:.1f} s, {run.acts_per_second:,.0f} activations "
                   f"per second. {run.dtype_reason}")
        with st.expander("Training curves", icon=":material/show_chart:"):
            st.altair_chart(training_curves(history_frame(run.history)))

    st.subheader("Sparsity against reconstruction")
    swept = run.experiment or experiment
    n_sweep = len(sweep_values(swept.config.architecture))
    st.markdown("Each point is one SAE. Sparser SAEs (lower L0) reconstruct less; where on this curve "
                f"do the known attributes show up? The sweep trains {n_sweep} short SAEs like the one "
                f"above, with {'k' if swept.config.architecture == 'topk' else 'L1'} varied.")
    if st.button(f"Run a sweep ({n_sweep} SAEs)", key="sae_sweep", icon=":material/linear_scale:"):
        run_sweep(lm, swept)
        points = [p for p in st.session_state.get(POINTS_KEY, [])
                  if (p["hook"], p["model"]) == (run.sae.cfg.hook_name, lm.spec)]
    if points:
        sweep = [p for p in points if p["source"] == "sweep"]
        x_title = "k" if sweep and sweep[0]["architecture"] == "topk" else "L1 coefficient"
        st.altair_chart(sweep_chart(pd.DataFrame(points), x_title, max_found=N_ATTRIBUTES))
        if sweep:
            st.markdown(" ".join(views.sweep_lines(sweep_verdict_of(sweep), x_title)))

    st.subheader("Features")
    feature_browser(lm, run)
    st.subheader("Save or load")
    download(run)
upload(lm)
how_it_is_computed(sae_model, sae_train, sae_loss, sae_splice, sae_features, sae_verdict, sae_files,
                   papers=sae_features.PAPERS)
