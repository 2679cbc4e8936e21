"""Hand-offs from the patching page: a head to the Attention page, a layer to the SAE and Probes
pages (links that set those pages' own URL controls), and a circuit to the Steering page as "ablate
these heads" (kept in this session, for the model it was found on).

What the Steering page needs to use a circuit: `received_ablations(lm.spec)` lists them; each names
its heads and carries, per head, the mean output z over the behaviour's prompts ([d_head], for mean
ablation); ablating head (L, H) means a hook on act_name("z", L) that writes z[:, :, H] = mean_z
(or 0 for zero ablation). `switch_on_circuit` makes that a session intervention
(ui.common.interventions.HeadAblation with per-head values, one per layer), which every page that
respects interventions then runs under; `switch_off_circuit` removes it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.models.hook_names import layer_words
from ui.common import interventions
from ui.common.layers import short_label
from ui.common.registry import topic_at

ABLATE_KEY = "handoff_ablate_heads"


@dataclass(frozen=True)
class HeadAblation:
    name: str  # shown to the learner, e.g. "IOI circuit (EAP-IG, 30 edges): heads 2.1, 3.0"
    model_spec: str
    heads: tuple[tuple[int, int], ...]
    mean_z: dict  # (layer, head) -> np.ndarray [d_head]: the head's mean output over the prompts
    behaviour: str
    source: str = "patching"


def send_ablation(ablation: HeadAblation) -> None:
    """Store a circuit for the Steering page (replaces one with the same name)."""
    st.session_state.setdefault(ABLATE_KEY, {})[ablation.name] = ablation


def received_ablations(model_spec: str) -> list[HeadAblation]:
    return [a for a in st.session_state.get(ABLATE_KEY, {}).values() if a.model_spec == model_spec]


def as_interventions(ablation: HeadAblation) -> list[interventions.HeadAblation]:
    """The circuit's mean ablation as session interventions: one per layer, each head set to its mean z."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in ablation.heads:
        by_layer.setdefault(int(layer), []).append(int(head))
    return [interventions.HeadAblation(
        name=f"{ablation.name} [layer {layer}]", model_spec=ablation.model_spec, layer=layer,
        heads=tuple(heads), values=tuple(np.asarray(ablation.mean_z[(layer, h)]) for h in heads),
        source=ablation.source) for layer, heads in sorted(by_layer.items())]


def circuit_is_on(ablation: HeadAblation, store=None) -> bool:
    return all(interventions.is_on(iv.name, store) for iv in as_interventions(ablation))


def switch_on_circuit(ablation: HeadAblation, store=None) -> None:
    for iv in as_interventions(ablation):
        interventions.switch_on(iv, store)


def switch_off_circuit(ablation: HeadAblation, store=None) -> None:
    for iv in as_interventions(ablation):
        interventions.switch_off(iv.name, store)


def mean_outputs(engine, heads) -> dict:
    """(layer, head) -> mean z over every clean and corrupted prompt and position [d_head]."""
    from core.models import act_name

    out = {}
    for layer, head in heads:
        name = act_name("z", layer)
        z = np.concatenate([engine.caches["clean"][name][:, :, head].numpy(),
                            engine.caches["corrupt"][name][:, :, head].numpy()])
        out[(layer, head)] = z.mean(axis=(0, 1))
    return out


def head_link(layer: int, head: int) -> None:
    st.page_link(topic_at("attention").script, label=f"Open head {layer}.{head} on the Attention page",
                 icon=":material/visibility:",
                 query_params={"attn_layer": str(layer), "attn_head": str(head), "attn_view": "One head"})


def layer_links(layer: int) -> None:
    """The stream at a lab layer (EMBEDDINGS or a block index) on the Probes and SAE pages."""
    from ui.probes.controls import SITE_LABELS
    from ui.sae.controls import SITES

    words = layer_words(layer)
    # both pages pick the stream point with ui.common.layers (the URL holds its label: "embed", "2")
    st.page_link(topic_at("probes").script, label=f"Probe the stream at {words}",
                 icon=":material/query_stats:",
                 query_params={"probes_site": SITE_LABELS["resid"], "probes_layer": short_label(layer)})
    st.page_link(topic_at("sae").script, label=f"Train an SAE on the stream at {words}",
                 icon=":material/grain:",
                 query_params={"sae_site": SITES["resid_post"], "sae_layer": short_label(layer)})
