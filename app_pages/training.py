"""Train a small transformer: watch attention heads form, and the bundled model's own training."""

import streamlit as st

from core.interp.training import architecture, fourier, loop, metrics, phase, tasks, trap, worker
from core.notebook.questions.training import GROKS, INDUCTION_FORMS
from ui.common.page import how_it_is_computed, page_header, show_problem
from ui.common.predict import predict_first
from ui.training import jobs
from ui.training.controls import controls
from ui.training.files import download
from ui.training.live import live_panel
from ui.training.replay import replay_view
from ui.training.use import register_trained, spec_for, trained_model

page_header(
    "Train a small transformer",
    "Train a transformer of one to three layers from scratch, here, in a minute or two, and watch it learn: "
    "the loss, its attention heads' scores and patterns, and the moment a new circuit forms. Tasks come "
    "with their ground truth (copying random tokens, adding numbers mod p, the bundled world's grammar), "
    "so every curve can be checked. Then open the trained model on any other page, or scrub through the "
    "bundled model's own training.",
    "When, and how suddenly, does a transformer form an induction head (or generalise after memorising), "
    "and what decides whether it does?",
)

train_tab, replay_tab = st.tabs(["Train your own", "The bundled model's training, replayed"])
with train_tab:
    ctl = controls()
    settings = ctl.settings
    issues = list(ctl.problems) or jobs.setting_problems(settings)
    for issue in issues:
        show_problem(issue)
    question = GROKS if settings.task.kind == "modular_addition" else INDUCTION_FORMS
    step = predict_first(question, key="train_predict", context=settings.describe(), page="training",
                         model="trained-here", fields={"steps": f"{settings.steps:,}"})
    if step.ready:
        if st.button("Start training", key="train_start", type="primary", icon=":material/play_arrow:",
                     disabled=bool(issues)):
            jobs.start(settings)
        job = jobs.current_job()
        if job is not None:
            same = job.settings == settings
            if not same:
                st.caption(f"The run below used other settings: {job.settings.describe()}.")
            kind = job.settings.task.kind
            # position or content is the trap's question: on the induction task the copy's place is random
            live_panel(job, n_symbols=job.settings.task.vocab if kind == "fixed_offset" else None)
            run = job.result
            jobs.settle(job)
            if run is not None and job.state == "diverged":
                show_problem("A model whose loss became NaN or infinite is not offered to other pages or for "
                             "download: lower the learning rate and train again.")
            elif run is not None and run.log.checkpoints:
                if same and job.state == "finished":  # the question is about the run's full length
                    step.reveal(run.log)
                elif same:
                    st.caption("The prediction is graded on a run that trains all its steps; this one was "
                               "stopped early.")
                use_col, file_col = st.columns(2)
                with use_col:
                    spec = spec_for(job.id)
                    if trained_model(spec) is None:
                        if st.button("Use this model on every page", key="train_use",
                                     icon=":material/open_in_new:"):
                            register_trained(run, job.id)
                            st.rerun()
                    else:
                        st.success(f"Available for this session as **{spec}**: pick it in the sidebar's "
                                   "model list on the Attention, Patching, Probes... pages.",
                                   icon=":material/check:")
                with file_col:
                    download(run, job.id)
            elif run is not None:
                show_problem("The run ended before anything was measured.")

with replay_tab:
    replay_view()

how_it_is_computed(
    tasks, architecture, loop, metrics, phase, trap, fourier, worker,
    papers=(
        "Olsson et al. (2022), [*In-context Learning and Induction Heads*]"
        "(https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html): the "
        "phase change, the in-context-learning score and the induction score.",
        "Elhage et al. (2021), [*A Mathematical Framework for Transformer Circuits*]"
        "(https://transformer-circuits.pub/2021/framework/index.html): why an induction head needs two "
        "layers (K-composition with a previous-token head).",
        "Power et al. (2022), [*Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets*]"
        "(https://arxiv.org/abs/2201.02177).",
        "Nanda et al. (2023), [*Progress measures for grokking via mechanistic interpretability*]"
        "(https://arxiv.org/abs/2301.05217): the Fourier algorithm and its key frequencies.",
        "Google PAIR, [*Do Machine Learning Models Memorize or Generalize?*]"
        "(https://pair.withgoogle.com/explorables/grokking/): an explorable of grokking.",
    ),
)
