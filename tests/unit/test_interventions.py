"""The session's interventions: applied to the model they were made on only, and harmless at zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models import act_name, load_model
from ui.common import interventions as I

TEXT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def lm():
    return load_model()


def logits(lm, store):
    with lm.hooks(I.active_hooks(lm, store)), torch.no_grad():
        return lm(lm.to_tokens(TEXT))


def steering(lm, coefficient, spec=None, name="v"):
    vector = np.random.default_rng(0).normal(size=lm.cfg.d_model).astype(np.float32)
    return I.Steering(name=name, model_spec=spec or lm.spec, hook_name=act_name("resid_pre", 2),
                      vector=vector, coefficient=coefficient, source="steering")


def test_nothing_switched_on_means_no_hooks(lm):
    store = {}
    assert I.active_hooks(lm, store) == [] and I.signature(lm, store) == ()
    assert torch.equal(logits(lm, store), logits(lm, {}))


def test_coefficient_zero_changes_nothing(lm):
    store = {}
    I.switch_on(steering(lm, 0.0), store)
    assert len(I.active_hooks(lm, store)) == 1
    assert torch.equal(logits(lm, store), logits(lm, {}))


def test_a_steering_vector_changes_the_output_and_the_signature(lm):
    store = {}
    I.switch_on(steering(lm, 4.0), store)
    assert not torch.allclose(logits(lm, store), logits(lm, {}))
    sig = I.signature(lm, store)
    I.switch_on(steering(lm, 2.0), store)  # same name: replaced
    assert len(I.active(lm, store)) == 1 and I.signature(lm, store) != sig
    I.switch_off("v", store)
    assert I.active(lm, store) == [] and not I.is_on("v", store)


def test_an_intervention_for_another_model_is_ignored(lm):
    store = {}
    I.switch_on(steering(lm, 4.0, spec="gpt2"), store)
    assert I.active(lm, store) == [] and I.active_hooks(lm, store) == []
    assert torch.equal(logits(lm, store), logits(lm, {}))


def test_a_hook_point_the_model_lacks_is_ignored(lm):
    store = {}
    I.switch_on(I.NeuronAblation(name="far", model_spec=lm.spec, layer=40, neuron=0), store)
    assert I.active(lm, store) == []


def test_head_and_neuron_ablations_do_what_they_say(lm):
    store = {}
    I.switch_on(I.HeadAblation(name="h", model_spec=lm.spec, layer=3, heads=(1,)), store)
    I.switch_on(I.NeuronAblation(name="n", model_spec=lm.spec, layer=1, neuron=7, value=0.25, mode="mean"),
                store)
    with lm.hooks(I.active_hooks(lm, store)):
        _, cache = lm.run_with_cache(lm.to_tokens(TEXT), names=[act_name("z", 3), act_name("post", 1)])
    assert cache[act_name("z", 3)][:, :, 1].abs().max() == 0
    assert cache[act_name("z", 3)][:, :, 0].abs().max() > 0
    assert torch.all(cache[act_name("post", 1)][..., 7] == 0.25)
    assert "L1 N7" in I.active(lm, store)[1].describe()
    assert {iv.hook_name for iv in I.active(lm, store)} == {act_name("z", 3), act_name("post", 1)}
