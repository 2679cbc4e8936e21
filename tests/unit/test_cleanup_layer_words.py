"""Pages word a stream point with core.models.hook_names (layer_words, short_label), not copies of it."""

from __future__ import annotations

from core.interp.patching import sweeps
from core.models import hook_names as H
from core.models.hook_names import EMBEDDINGS
from ui.patching import views as patching_views
from ui.probes import frames as probe_frames
from ui.probes import words as probe_words
from ui.residual import views as residual_views
from ui.steering import handoffs as steering_handoffs
from ui.steering import views as steering_views


def test_the_pages_use_the_shared_layer_words():
    assert probe_words.layer_words is H.layer_words
    assert steering_views.layer_words is H.layer_words
    assert not hasattr(probe_frames, "layer_label")  # its copy is gone: layer_labels uses short_label


def test_the_words_are_the_same_as_before():
    assert residual_views.where(EMBEDDINGS) == "the embeddings" and residual_views.where(3) == "layer 3"
    assert residual_views.where(None) == "never"
    assert steering_views.sweep_label(EMBEDDINGS) == "embed" and steering_views.sweep_label(2) == "2"
    assert steering_handoffs.push_name("happy", EMBEDDINGS) == "Steering page: happy, at the embeddings"
    assert steering_handoffs.push_name("happy", 1) == "Steering page: happy, at layer 1"
    assert steering_handoffs.push_name("happy", None) == "Steering page: happy, at its own hook point"


def test_a_stream_sweep_row_label_reads_back_as_its_layer_and_its_words():
    _, labels, keys = sweeps._stream_rows(3)
    assert labels == ["embed", "0", "1", "2"]
    assert [patching_views.stream_row_layer(r) for r in labels] == [k for k, _ in keys] == [-1, 0, 1, 2]
    assert patching_views.component("stream", "", "embed", "4 ' John'") == "the embeddings at 4 ' John'"
    assert patching_views.component("stream", "", "2", "4 ' John'") == "layer 2 at 4 ' John'"
    assert patching_views.component("mlp_out", "", "2", "4") == "the MLP of layer 2 at 4"
