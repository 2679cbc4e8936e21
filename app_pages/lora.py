"""LoRA & forgetting: fine-tune a private copy of the model, see exactly what changed in its weights
and behaviour, and what it forgot while learning."""

import streamlit as st

from core.interp.finetune import behaviour_diff, forgetting
from core.interp.finetune import methods as finetune
from core.interp.finetune import tasks as finetune_tasks
from core.interp.finetune import weight_diff as lora_diff
from ui.common.models import current_model
from ui.common.page import how_it_is_computed, page_header
from ui.lora.compute import current_result, memory_note, recover_interrupted, run_summary, train_live
from ui.lora.controls import settings_form
from ui.lora.files import downloads, loader
from ui.lora.views import behaviour_tab, forgetting_tab, weights_tab, what_to_notice

PAPERS = (
    "Hu et al. (2021), *LoRA: Low-Rank Adaptation of Large Language Models*, arXiv:2106.09685",
    "Liu et al. (2022), *Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context "
    "Learning* (IA3), arXiv:2205.05638",
    "Biderman et al. (2024), *LoRA Learns Less and Forgets Less*, arXiv:2405.09673",
    "McCloskey & Cohen (1989), *Catastrophic interference in connectionist networks*",
    "Roy & Vetterli (2007), *The effective rank: a measure of effective dimensionality*",
    "PEFT: https://huggingface.co/docs/peft",
)

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
if settings is not None and pressed:
    train_live(lm, settings)

result = current_result(lm)
if result is None:
    st.info("Press **Train** to fine-tune copies of the model with these settings (150 steps take about "
            "5 to 15 seconds per method on the bundled model), or load an adapter below.",
            icon=":material/arrow_upward:")
    with st.expander("Load an adapter", icon=":material/upload:"):
        loader(lm, settings.task if settings else "changed_fact", settings.lora.seed if settings else 0)
    how_it_is_computed(finetune, finetune_tasks, lora_diff, behaviour_diff, forgetting, papers=PAPERS)
    st.stop()

if result.stopped:
    st.warning("Training was stopped; these are the copies as they were then.", icon=":material/stop_circle:")
if result.settings is not None and settings is not None and result.settings != settings:
    st.caption(":material/info: The settings above changed since this run: press **Train** to run them.")
st.subheader(f"What {len(result.runs)} fine-tuned cop{'y' if len(result.runs) == 1 else 'ies'} learned")
st.caption(result.settings.describe() if result.settings else "A loaded adapter.")
st.dataframe(run_summary(result), hide_index=True)
st.caption(f":material/memory: {memory_note(lm)}")

if lm.is_bundled:
    st.markdown(what_to_notice(lm, result))

weights, behaviour, forgotten, files = st.tabs(
    ["Weights: what changed", "Behaviour: where it shows", "Forgetting", "Adapter files"],
    key="lora_tab", bind="query-params")
with weights:
    weights_tab(lm, result)
with behaviour:
    behaviour_tab(lm, result)
with forgotten:
    forgetting_tab(lm, result)
with files:
    downloads(lm, result)
    st.markdown("**Load an adapter** for the current model: it is compared with the runs above.")
    loader(lm, result.task.key, 0)

how_it_is_computed(finetune, finetune_tasks, lora_diff, behaviour_diff, forgetting, papers=PAPERS)
