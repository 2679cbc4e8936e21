"""Shared test setup: no network, ever, and tiny models built on demand."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # set before transformers / huggingface_hub are imported
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("NDIF_API_KEY", None)  # a developer's key must not make the sidebar ask NDIF for its models
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads made
# small forward passes 20-70x slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

from tests.tiny_models import build  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """factory(arch) -> folder holding a saved tiny random model of that architecture."""
    made: dict[str, object] = {}

    def make(arch: str):
        if arch not in made:
            made[arch] = build(arch, tmp_path_factory.mktemp(arch))
        return made[arch]

    return make


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    """factory(arch) -> a HookedLM over that architecture's tiny model, loaded once per test session.
    Tests must not change it (fine-tuning works on copies)."""
    from core.models import load_model

    loaded: dict[str, object] = {}

    def get(arch: str):
        if arch not in loaded:
            loaded[arch] = load_model(str(tiny_model_dir(arch)))
        return loaded[arch]

    return get
