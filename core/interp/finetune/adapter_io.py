"""Saving and loading adapters: a LoRA or IA3 adapter is a small folder next to a base model.

`save_pretrained` writes adapter_config.json (method, rank, alpha, which modules) and
adapter_model.safetensors (only the adapter's own weights: A and B, or the IA3 scales), so an
adapter for a 1M-parameter model is a few tens of kilobytes. Loading it onto the same base model
gives back the tuned model exactly; onto a different base it fails, and the message says why.

Loading reads the two files without trusting them (core.interp.finetune.adapter_files), checks the
config and the weights' header against the model and the memory budget before PEFT allocates
anything (adapter_check), then lets PEFT build the adapter on a private copy from the checked
settings only, and fills in the checked weights. The copy gets a spec of its own
(core.models.hooked_lm.derived_spec) and the base model's `is_bundled`.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from peft import PeftModel
from peft.utils import set_peft_model_state_dict

from core.interp.finetune.adapter_check import AdapterPlan, plan, read_weights
from core.interp.finetune.adapter_files import AdapterLoadError, read_folder, read_zip
from core.interp.finetune.lora_kernel import use_fast_lora
from core.interp.finetune.memory import adapter_bytes, check_copy_budget, model_bytes
from core.models.budget import MemoryBudgetError
from core.models.hooked_lm import derived_spec
from core.models.loading import wrap

MIN_WEIGHTS_LIMIT = 1_000_000  # bytes; the limit for a tiny model's adapter file is at least this


def adapter_zip(peft_model, base_spec: str) -> bytes:
    """The adapter saved with PEFT's save_pretrained, as the bytes of a zip archive."""
    for config in peft_model.peft_config.values():
        config.base_model_name_or_path = base_spec
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        # embeddings are never adapted here; "auto" would look the base model up on the hub
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(tmp).as_posix())
    return buffer.getvalue()


def max_weights_bytes(lm) -> int:
    """The largest adapter_model.safetensors worth reading for lm: twice the model's own weights in
    float64 (a LoRA of full rank on every matrix holds r (d_in + d_out) <= 2 d_in d_out numbers)."""
    return max(4 * model_bytes(lm), MIN_WEIGHTS_LIMIT)


@dataclass(frozen=True)
class LoadedAdapter:
    model: object  # the tuned HookedLM
    peft_model: PeftModel
    config: dict  # adapter_config.json as written in the file
    plan: AdapterPlan

    @property
    def method(self) -> str:
        return self.plan.method


def load_adapter(lm, source: bytes | str | Path, budget_bytes: float | None = None,
                 held_bytes: float = 0) -> LoadedAdapter:
    """An adapter from a zip's bytes or a folder's name, on a private copy of lm.

    Every failure is an AdapterLoadError with a message for the learner, raised before the model
    is copied when the files do not fit the model, or the copy and the adapter, next to held_bytes,
    would not fit budget_bytes (None: the session budget)."""
    limit = max_weights_bytes(lm)
    files = read_zip(source, limit) if isinstance(source, bytes) else read_folder(str(source), limit)
    plan_ = plan(lm, files)
    try:
        check_copy_budget(lm, plan_.method, budget_bytes, held_bytes,
                          extra_bytes=adapter_bytes(plan_.n_params))
    except MemoryBudgetError as err:
        raise AdapterLoadError(str(err)) from err
    weights = read_weights(files, plan_)
    peft_model = PeftModel(lm.detached_model(), plan_.peft_config)
    result = set_peft_model_state_dict(peft_model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k or "ia3_" in k]
    if missing or result.unexpected_keys:  # the plan said exactly these tensors: a bug if it happens
        raise AdapterLoadError(f"PEFT did not take the adapter's weights as planned ({len(missing)} missing, "
                               f"{len(result.unexpected_keys)} unexpected).")
    peft_model.eval()
    peft_model.requires_grad_(False)
    use_fast_lora(peft_model)  # same maths, faster; layers it does not cover (DoRA, dropout) use PEFT's
    kind = plan_.method
    tuned = wrap(peft_model.base_model.model, lm.tokenizer, spec=derived_spec(lm.spec, f"loaded-{kind}"),
                 name=f"{lm.name} + loaded {kind.upper()} adapter", is_bundled=lm.is_bundled)
    return LoadedAdapter(tuned, peft_model, plan_.raw_config, plan_)
