"""Models with hook points: load_model() returns a HookedLM (see core.models.hooked_lm)."""

from core.models.dispatch import HookPoint
from core.models.hook_names import act_name
from core.models.hooked_lm import ActivationCache, HookedLM
from core.models.loading import BUNDLED, ModelLoadError, load_model
from core.models.tokens import EmptyPromptError, Prompt

__all__ = [
    "BUNDLED", "ActivationCache", "EmptyPromptError", "HookPoint", "HookedLM", "ModelLoadError",
    "Prompt", "act_name", "load_model",
]
