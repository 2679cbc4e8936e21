"""LoRA & forgetting: fine-tune a private copy of the model, see exactly what changed in its weights
and behaviour, and what it forgot while learning."""

import streamlit as st

import core.interp.finetune as finetune
from core.interp.finetune import behaviour_diff, forgetting, lora, verdict, weight_diff
from core.notebook.questions.lora import FORGETS_MORE, MEAN_DROP
from ui.common.models import current_model
from ui.common.page import end_page, how_it_is_computed, page_header, show_problem
from ui.common.predict import predict_first
from ui.lora.compute import (
    current_result,
    diverged_runs,
    memory_note,
    promise,
    recover_interrupted,
    train_live,
)
from ui.lora.controls import settings_form
from ui.lora.files import downloads, loader
from ui.lora.frames import run_summary_frame
from ui.lora.views import behaviour_tab, dtype_note, forgetting_tab, weights_tab, what_to_notice

PAPERS = (
    "Hu et al. (2021), [*LoRA: Low-Rank Adaptation of Large Language Models*](https://arxiv.org/abs/2106.09685)",
    "Liu et al. (2022), [*Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context "
    "Learning*](https://arxiv.org/abs/2205.05638) (IA3)",
    "Biderman et al. (2024), [*LoRA Learns Less and Forgets Less*](https://arxiv.org/abs/2405.09673)",
    "McCloskey & Cohen (1989), [*Catastrophic interference in connectionist networks*]"
    "(https://doi.org/10.1016/S0079-7421(08)60536-8)",
    "Roy & Vetterli (2007), [*The effective rank: a measure of effective dimensionality*]"
    "(https://ieeexplore.ieee.org/document/7098875)",
    "[PEFT documentation](https://huggingface.co/docs/peft)",
)
LESSONS = (finetune, lora, forgetting, verdict, weight_diff, behaviour_diff)

lm = current_model()
page_header(
    "LoRA & forgetting",
    "Fine-tuning changes a model, but how much, where, and at what cost? Teach the model something new "
    "(a changed fact, a new story style, a new word) with **LoRA**, which adds a small low-rank update "
    "ΔW = B A next to chosen weight matrices, and compare it with **full fine-tuning** of every weight. "
    "Then look at the update itself, at where predictions moved, and at the old skills measured all "
    "along the way.",
    "How low-rank is what fine-tuning learns, and does a low-rank update forget less of what the model "
    "knew?",
)
recover_interrupted(lm)
settings, pressed = settings_form()
compared = settings is not None and "full" in settings.compare
step = predict_first(FORGETS_MORE if compared else MEAN_DROP, key="lora_predict",
                     context=f"{lm.spec}|{settings!r}", page="lora", model=lm.spec)
if settings is not None and pressed:
    if step.ready:
        train_live(lm, settings)
    else:
        show_problem("Lock your prediction (or skip it) first: training shows the old skills as it goes.")

result = current_result(lm)
if result is None:
    st.info(f"Press **Train** to fine-tune copies of the model with these settings ({promise(lm)}), or load "
            "an adapter below.", icon=":material/arrow_upward:")
    with st.expander("Load an adapter", icon=":material/upload:"):
        loader(lm, settings.task if settings else "changed_fact", settings.lora.seed if settings else 0)
    how_it_is_computed(*LESSONS, papers=PAPERS)
    end_page()

if result.settings is not None and result.settings == settings and not step.ready:
    st.caption(":material/visibility_off: This run's results are hidden until you lock or skip the "
               "prediction above.")
    how_it_is_computed(*LESSONS, papers=PAPERS)
    end_page()
if result.stopped:
    st.warning("Training was stopped; these are the copies as they were then.", icon=":material/stop_circle:")
if result.settings is not None and settings is not None and result.settings != settings:
    st.caption(":material/info: The settings above changed since this run: press **Train** to run them.")
st.subheader(f"What {len(result.runs)} fine-tuned cop{'y' if len(result.runs) == 1 else 'ies'} learned")
st.caption(result.settings.describe() if result.settings else "A loaded adapter.")
st.dataframe(run_summary_frame(result.runs), hide_index=True)
note = dtype_note(result)
st.caption(f":material/memory: {memory_note(lm)}" + (f"  \n:material/speed: {note}" if note else ""))

report = result.report(diverged_runs(lm, result))
if result.settings is not None and result.settings == settings:
    step.reveal(report)
st.markdown(what_to_notice(lm, result, report))

weights, behaviour, forgotten, files = st.tabs(
    ["Weights: what changed", "Behaviour: where it shows", "Forgetting", "Adapter files"],
    key="lora_tab", bind="query-params")
with weights:
    weights_tab(lm, result)
with behaviour:
    behaviour_tab(lm, result)
with forgotten:
    forgetting_tab(lm, result, report)
with files:
    downloads(lm, result)
    st.markdown("**Load an adapter** for the current model: it is compared with the runs above.")
    loader(lm, result.task.key, 0)

how_it_is_computed(*LESSONS, papers=PAPERS)
