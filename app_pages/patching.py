"""Activation patching & circuits: which components cause a behaviour, found by intervening on them."""

import streamlit as st

from core.bundled.report import report_heads
from core.interp.patching import (
    attribution,
    circuits,
    edges,
    engine,
    graph,
    metric,
    path_patching,
    reads,
    sweeps,
)
from core.interp.patching.tasks import PairError
from core.interp.patching.verdicts import head_effects
from core.notebook.questions.patching import TOP_HEAD
from ui.bundled_model.compute import report
from ui.common.interventions import show_active, signature
from ui.common.models import current_model
from ui.common.page import end_page, how_it_is_computed, page_header, show_problem
from ui.common.predict import predict_first
from ui.common.remote import ask
from ui.patching import budget, compute, views
from ui.patching.controls import BEHAVIOUR_LABELS, pick_behaviour, pick_direction

page_header(
    "Activation patching & circuits",
    "Looking at activations shows what is there; patching shows what **causes** the answer. Run the model "
    "on a prompt whose answer changed, copy in one activation from the original run, and see how much of the "
    "original answer comes back. Do that for every layer, position and head in one batched run, then follow "
    "single paths between heads, estimate every patch from one gradient, and prune the model down to the "
    "few edges that still carry the behaviour.",
    "Which components, and which connections between them, cause the model's answer?",
)

lm = current_model()
here = reads.has_weights(lm)  # False: a model elsewhere (nnsight), patched on a budget of requests
show_active(lm, key="patch_iv")
sig = signature(lm)
behaviour, custom = pick_behaviour(lm)
try:
    task = compute.task_of(lm, behaviour, custom)
except PairError as err:
    show_problem(str(err))
    end_page()
base = ask(lm, "Running the clean and corrupted prompts",
           lambda: compute.baseline(lm, behaviour, custom, sig), key="patch_baseline")
if base is None:  # a remote request failed: the message is on the page
    end_page()
views.show_pair(task, base)
direction = pick_direction()
if not here and budget.blocked_by_interventions(lm):
    end_page()

step = predict_first(TOP_HEAD, key="patch_predict",
                     context=f"{lm.spec}|{behaviour}|{custom}|{direction}|{sig}",
                     page="patching", model=lm.spec, cfg=lm.cfg,
                     fields={"behaviour": BEHAVIOUR_LABELS[behaviour]})
if step.ready:
    heads = (compute.sweep(lm, behaviour, custom, "heads", direction, sig) if here
             else budget.heads_sweep(lm, behaviour, custom, direction))
    if heads is None:
        end_page()
    step.reveal(head_effects(heads))
    truth = None
    if lm.is_bundled and behaviour == "induction" and report():
        listed = report_heads(report())
        truth = {(a, b) for kind in ("previous_token", "induction") for a, b, _ in listed.get(kind, [])}
    sweep_tab, path_tab, atp_tab, circuit_tab, check_tab = st.tabs(
        views.TABS, key="patch_view", on_change="rerun", bind="query-params")
    if sweep_tab.open:
        with sweep_tab:
            (views.sweeps_tab if here else budget.sweeps_tab)(lm, behaviour, custom, direction)
    if path_tab.open:
        with path_tab:
            views.paths_tab(lm, behaviour, custom, direction) if here else budget.local_only("Path patching")
    if atp_tab.open:
        with atp_tab:
            (views.attribution_tab if here else budget.attribution_tab)(lm, behaviour, custom, direction)
    if circuit_tab.open:
        with circuit_tab:
            views.circuit_tab(lm, behaviour, custom, truth) if here else budget.local_only("Circuit")
    if check_tab.open:
        with check_tab:
            views.crosscheck_tab(lm, behaviour, custom) if here else budget.local_only("Cross-check")

how_it_is_computed(
    metric, engine, sweeps, path_patching, attribution, graph, edges, circuits, reads,
    papers=(
        "Meng, Bau, Andonian and Belinkov (2022), [*Locating and editing factual associations in GPT*]"
        "(https://arxiv.org/abs/2202.05262): causal tracing, patching the residual stream.",
        "Wang, Variengien, Conmy, Shlegeris and Steinhardt (2022), [*Interpretability in the wild: a "
        "circuit for indirect object identification in GPT-2 small*](https://arxiv.org/abs/2211.00593): "
        "IOI, path patching.",
        "Heimersheim and Nanda (2024), [*How to use and interpret activation patching*]"
        "(https://arxiv.org/abs/2404.15255): denoising and noising, metrics.",
        "Zhang and Nanda (2024), [*Towards best practices of activation patching in language models*]"
        "(https://arxiv.org/abs/2309.16042): the logit difference, corruptions.",
        "Nanda (2023), [*Attribution "
        "patching*](https://www.neelnanda.io/mechanistic-interpretability/attribution-patching); Kramár, "
        "Lieberum, Shah and Nanda (2024), [*AtP\\**](https://arxiv.org/abs/2403.00745): the QK fix.",
        "Conmy, Mavor-Parker, Lynch, Heimersheim and Garriga-Alonso (2023), [*Towards automated circuit "
        "discovery for mechanistic interpretability*](https://arxiv.org/abs/2304.14997): ACDC.",
        "Syed, Rager and Conmy (2023), [*Attribution patching outperforms automated circuit discovery*]"
        "(https://arxiv.org/abs/2310.10348): EAP; Hanna, Pezzelle and Belinkov (2024), [*Have faith in "
        "faithfulness*](https://arxiv.org/abs/2403.17806): EAP-IG.",
        "Olsson et al. (2022), [*In-context learning and induction heads*]"
        "(https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html).",
        "TransformerLens's `patching` module (Nanda and Bloom): the sweeps this page batches; its "
        "[activation patching demo](https://transformerlensorg.github.io/TransformerLens/generated/demos/"
        "Activation_Patching_in_TL_Demo.html) walks through the same sweeps (stream, attention and MLP "
        "outputs, heads) on IOI.",
    ),
)
