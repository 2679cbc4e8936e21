"""Architecture adapters: where each hook point lives in each family's Hugging Face module tree."""

from __future__ import annotations

from torch import nn

from core.models.adapters.base import Adapter, AttentionWeights, BlockModules
from core.models.adapters.gpt2 import GPT2Adapter
from core.models.adapters.gpt_neo import GPTNeoAdapter
from core.models.adapters.gpt_neox import NeoXAdapter
from core.models.adapters.llama import LlamaAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "gpt2": GPT2Adapter,
    "gpt_neo": GPTNeoAdapter,
    "gpt_neox": NeoXAdapter,
    "llama": LlamaAdapter,
}
SUPPORTED = tuple(ADAPTERS)
FAMILY_NAMES = "GPT-2, GPT-Neo (TinyStories), GPT-NeoX (Pythia), Llama (SmolLM)"


def adapter_class(model_type: str) -> type[Adapter]:
    if model_type not in ADAPTERS:
        raise ValueError(f"Architecture {model_type!r} is not supported; supported: {FAMILY_NAMES}.")
    return ADAPTERS[model_type]


def adapter_for(model: nn.Module) -> Adapter:
    return adapter_class(model.config.model_type)(model)


__all__ = ["ADAPTERS", "SUPPORTED", "Adapter", "AttentionWeights", "BlockModules", "adapter_for",
           "adapter_class", "FAMILY_NAMES"]
