"""LoRA and IA3: learn a small update next to frozen weights, on a private copy of the model.

Full fine-tuning updates every weight W. LoRA (Hu et al., 2021) freezes W and learns a low-rank
correction next to chosen weight matrices:

    h = W x + (alpha / r) * B A x        A [r, d_in] (random at first), B [d_out, r] (zero at first)

so the model starts exactly where it was (B = 0) and can only move W within a rank-r subspace:
delta W = (alpha / r) * B @ A. With r = 8 on a 128 x 384 matrix that is 4,096 trainable numbers
instead of 49,152. IA3 (Liu et al., 2022) is smaller still: it learns one scale per output unit
(per input unit for the MLP's output matrix), so delta W = (l - 1) * W, a rescaling of W itself.

The shared model is never touched. For LoRA and IA3, PEFT injects its layers into a deep copy
(`lm.detached_model()`), which is then wrapped as a new HookedLM: our hook points must sit on the
modules PEFT put in place. Full fine-tuning trains `lm.copy(trainable=True)`. Either way the copy
gets a spec of its own (core.models.hooked_lm.derived_spec, e.g. "bundled+lora#3f2a9c0e"), so
nothing cached for the base model, or for another run, is ever mistaken for it.

PEFT's LoRA layers then compute through core.interp.finetune.lora_kernel: the same parameters and
maths, about a fifth less time per training step on the bundled model.
"""

from __future__ import annotations

import math

import torch
from peft import IA3Config, LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer

from core.interp.finetune.config import METHODS, FinetuneConfig
from core.interp.finetune.lora_kernel import use_fast_lora
from core.interp.finetune.memory import check_copy_budget
from core.interp.finetune.targets import is_conv1d, matrix_dims, target_modules
from core.models.hooked_lm import derived_spec
from core.models.loading import wrap


def peft_config(lm, cfg: FinetuneConfig):
    """The PEFT LoraConfig / IA3Config for the chosen roles (GPT-2 stores weights [in, out])."""
    targets = target_modules(lm, cfg.roles)
    fan_in_fan_out = is_conv1d(lm.model, targets)
    if cfg.method == "lora":
        return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, bias="none",
                          target_modules=list(targets), fan_in_fan_out=fan_in_fan_out)
    ff = [n for n, (_, role, _) in targets.items() if role == "mlp_out"]
    return IA3Config(target_modules=list(targets), feedforward_modules=ff, fan_in_fan_out=fan_in_fan_out)


def lora_param_count(lm, cfg: FinetuneConfig) -> int:
    """Trainable numbers of cfg's adapter on lm, from shapes alone: r (d_in + d_out) per LoRA matrix,
    one scale per output unit (input unit for the MLP's output matrix) for IA3, all for full FT."""
    if cfg.method == "full":
        return lm.cfg.n_params
    modules = dict(lm.model.named_modules())
    total = 0
    for name, (_, role, _) in target_modules(lm, cfg.roles).items():
        d_out, d_in = matrix_dims(modules[name])
        total += cfg.rank * (d_in + d_out) if cfg.method == "lora" else (d_in if role == "mlp_out" else d_out)
    return total


def adapted_copy(lm, cfg: FinetuneConfig, budget_bytes: float | None = None, held_bytes: float = 0):
    """(HookedLM over a private copy, PeftModel or None for full FT), ready to train.

    Raises core.models.budget.MemoryBudgetError, before copying anything, if the copy (and its
    training state) next to `held_bytes` would not fit budget_bytes (None: the session budget)."""
    extra = 0 if cfg.method == "full" else 4 * 4 * lora_param_count(lm, cfg)  # adapter + grad + Adam
    check_copy_budget(lm, cfg.method, budget_bytes, held_bytes, extra_bytes=extra)
    name = f"{lm.name} + {METHODS[cfg.method]}"
    if cfg.method == "full":
        tuned = lm.copy(trainable=True, spec=derived_spec(lm.spec, "full"))
        tuned.name = name
        return tuned, None
    peft_model = get_peft_model(lm.detached_model(), peft_config(lm, cfg))
    gen = torch.Generator().manual_seed(cfg.seed)  # LoRA's A is random (B = 0): redrawn from our own
    for module in peft_model.modules():  # generator, as PEFT draws it, so no global RNG is touched
        if isinstance(module, LoraLayer):
            for A in module.lora_A.values():
                torch.nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5), generator=gen)
    use_fast_lora(peft_model)  # the same layers, computed faster (core.interp.finetune.lora_kernel)
    tuned = wrap(peft_model.base_model.model, lm.tokenizer, spec=derived_spec(lm.spec, cfg.method), name=name,
                 is_bundled=lm.is_bundled)
    return tuned, peft_model
