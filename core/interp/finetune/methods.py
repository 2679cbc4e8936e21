"""Fine-tuning a private copy of a model three ways: LoRA, IA3, and full fine-tuning.

Full fine-tuning updates every weight W. LoRA (Hu et al., 2021) freezes W and learns a low-rank
correction next to chosen weight matrices:

    h = W x + (alpha / r) * B A x        A [r, d_in] (random at first), B [d_out, r] (zero at first)

so the model starts exactly where it was (B = 0) and can only move W within a rank-r subspace:
delta W = (alpha / r) * B @ A. With r = 8 on a 128 x 384 matrix that is 4,096 trainable numbers
instead of 49,152. IA3 (Liu et al., 2022) is smaller still: it learns one scale per output unit
(per input unit for the MLP's output matrix), so delta W = (l - 1) * W, a rescaling of W itself.

The adapted matrices are picked by role, the same on every architecture: attention's query/key/value
projection, its output projection, the MLP's input and output matrices. Training minimises the
usual next-token loss on rows of 64 tokens packed from the task's documents; with replay > 0, that
share of every batch is original corpus text instead, a classic defence against forgetting.
Matrix products run in bfloat16 (autocast), several times faster on this CPU; weights stay float32.

The shared model is never touched: training runs on a deep copy (`lm.detached_model`), and PEFT's
layers are injected into that copy, which is then wrapped as a new HookedLM (our hooks must sit on
the modules PEFT put in place) with a spec of its own ("bundled+lora#3f2a..."), so nothing cached
for the base model is ever mistaken for the tuned one. A copy costs a whole model's memory (full
fine-tuning also holds a gradient and Adam's two moments per weight while it trains): the size is
checked against a budget before any copy is made. Every `eval_every` steps the `SkillSuite`
(core.interp.finetune.forgetting) measures the model's old skills, which gives the forgetting curves.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft import IA3Config, LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers.pytorch_utils import Conv1D

from core.interp.finetune.forgetting import SkillSuite, pack_rows
from core.interp.finetune.tasks import Task
from core.models.loading import wrap
from core.world.datasets import corpus_texts

METHODS = {"lora": "LoRA", "ia3": "IA3", "full": "Full fine-tuning"}
COPY_BUDGET_BYTES = 1_500_000_000  # default limit for a copy and its training state (the page: all it keeps)
ROLES = {"attn_qkv": "attention q, k, v", "attn_out": "attention output", "mlp_in": "MLP in",
         "mlp_out": "MLP out"}


@dataclass(frozen=True)
class FinetuneConfig:
    method: str = "lora"  # "lora", "ia3" or "full"
    roles: tuple[str, ...] = tuple(ROLES)  # which matrices LoRA / IA3 adapt (full FT: all weights)
    rank: int = 8  # LoRA r
    alpha: float = 16.0  # LoRA alpha; the update is scaled by alpha / r
    lr: float = 2e-3
    steps: int = 300
    batch: int = 16
    seq_len: int = 64
    replay: float = 0.0  # share of each batch drawn from the original corpus
    seed: int = 0
    eval_every: int = 25  # measure the old skills every this many steps (0: only first and last)
    bf16: bool = True
    train_rows: int = 256  # rows packed from the task (and from the corpus, for replay)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, not {self.method!r}")
        if self.method != "full" and not self.roles:
            raise ValueError("Pick at least one kind of matrix to adapt.")
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"Unknown roles {sorted(unknown)}; roles are {tuple(ROLES)}")
        if self.rank < 1 or self.steps < 1 or self.batch < 1 or not 0 <= self.replay < 1:
            raise ValueError("rank, steps and batch must be >= 1, and replay in [0, 1)")


@dataclass(frozen=True)
class Progress:
    """What the training loop reports after each step (skills only on measuring steps)."""

    step: int  # steps done
    steps: int
    loss: float
    seconds: float
    skills: dict[str, float] | None = None


def target_modules(lm, roles, layers=None) -> dict[str, tuple[int, str, str]]:
    """Full module name -> (layer, role, name inside the block) for the chosen roles and layers."""
    names = {id(m): n for n, m in lm.model.named_modules()}
    out = {}
    for layer in range(lm.cfg.n_layers) if layers is None else layers:
        prefix = names[id(lm.adapter.blocks()[layer])]
        for role in roles:
            for rel in lm.adapter.target_roles[role]:
                out[f"{prefix}.{rel}"] = (layer, role, rel)
    return out


def _is_conv1d(model, names) -> bool:
    modules = dict(model.named_modules())
    return any(isinstance(modules[n], Conv1D) for n in names)


def peft_config(lm, cfg: FinetuneConfig):
    """The PEFT LoraConfig / IA3Config for the chosen roles (GPT-2 stores weights [in, out])."""
    targets = target_modules(lm, cfg.roles)
    fan_in_fan_out = _is_conv1d(lm.model, targets)
    if cfg.method == "lora":
        return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, bias="none",
                          target_modules=list(targets), fan_in_fan_out=fan_in_fan_out)
    ff = [n for n, (_, role, _) in targets.items() if role == "mlp_out"]
    return IA3Config(target_modules=list(targets), feedforward_modules=ff,
                     fan_in_fan_out=fan_in_fan_out)


class MemoryBudgetError(ValueError):
    """A copy of the model would not fit the memory budget; the message says by how much."""


def model_bytes(lm) -> int:
    """Bytes of the model's parameters and buffers: what one deep copy of it allocates."""
    tensors = {id(t): t for t in itertools.chain(lm.model.parameters(), lm.model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def copy_bytes(lm, method: str) -> int:
    """Bytes a fine-tuned copy needs while it trains: the copied weights and buffers, plus, for full
    fine-tuning, a gradient and Adam's two moments for every parameter. A LoRA or IA3 adapter and
    its optimizer state are a few percent at most, and left out."""
    size = model_bytes(lm)
    if method == "full":
        params = {id(p): p for p in lm.model.parameters()}.values()
        size += 3 * sum(p.numel() * p.element_size() for p in params)
    return size


def check_copy_budget(lm, method: str, max_bytes: float | None = COPY_BUDGET_BYTES,
                      held_bytes: int = 0) -> int:
    """The bytes a `method` copy of lm needs; raises MemoryBudgetError if, next to `held_bytes`
    already taken by other copies, it would exceed max_bytes (None: no limit)."""
    need = copy_bytes(lm, method)
    if max_bytes is not None and held_bytes + need > max_bytes:
        held = f" next to the {held_bytes / 1e9:.2f} GB of copies already kept" if held_bytes else ""
        what = ("weights, gradients and Adam's two moments" if method == "full"
                else "a whole copy of its weights")
        raise MemoryBudgetError(
            f"{METHODS.get(method, method)} of {lm.name} would need about {need / 1e9:.2f} GB ({what})"
            f"{held}, more than this app allows ({max_bytes / 1e9:.2f} GB).")
    return need


def copy_spec(lm, what: str) -> str:
    """A spec of its own for a tuned copy of lm, e.g. "bundled+lora#1f3a9c0e": caches keyed on spec
    (st.cache_data(_lm, spec)) must never return the base model's results for it, or another run's."""
    return f"{lm.spec}+{what}#{uuid.uuid4().hex[:8]}"


def adapted_copy(lm, cfg: FinetuneConfig, seed: int = 0,
                 max_bytes: float | None = COPY_BUDGET_BYTES):
    """(HookedLM over a private copy with fresh adapters, PeftModel or None for full FT).

    Raises MemoryBudgetError, before copying anything, if the copy would need more than max_bytes."""
    check_copy_budget(lm, cfg.method, max_bytes)
    model = lm.detached_model()
    spec, name = copy_spec(lm, cfg.method), f"{lm.name} + {METHODS[cfg.method]}"
    if cfg.method == "full":
        model.requires_grad_(True)
        return wrap(model, lm.tokenizer, spec=spec, name=name, is_bundled=lm.is_bundled), None
    peft_model = get_peft_model(model, peft_config(lm, cfg))
    gen = torch.Generator().manual_seed(seed)  # LoRA's A is random (B = 0): redrawn from our own
    for module in peft_model.modules():  # generator, as PEFT draws it, so no global RNG is touched
        if isinstance(module, LoraLayer):
            for A in module.lora_A.values():
                torch.nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5), generator=gen)
    tuned = wrap(peft_model.base_model.model, lm.tokenizer, spec=spec, name=name, is_bundled=lm.is_bundled)
    return tuned, peft_model


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return list({id(p): p for p in model.parameters() if p.requires_grad}.values())


class FineTuner:
    """Fine-tune a copy of `lm` on a task: FineTuner(cfg).fit(lm, task, suite, callback).

    Fitted attributes: model_ (the tuned HookedLM), peft_model_ (PeftModel, None for full FT),
    losses_ (training loss per step), history_ [(step, skills)], steps_done_, seconds_,
    n_trainable_. They are filled in as training goes, so a run interrupted by the user (the
    callback returns False, or raises) keeps what it learned so far; finished_ says whether it ran
    every step. fit raises MemoryBudgetError, before copying anything, if the copy and its training
    state would need more than max_bytes (None: no limit).
    """

    def __init__(self, config: FinetuneConfig, max_bytes: float | None = COPY_BUDGET_BYTES):
        self.config = config
        self.max_bytes = max_bytes

    def fit(self, lm, task: Task, suite: SkillSuite | None = None,
            callback: Callable[[Progress], bool | None] | None = None) -> FineTuner:
        cfg = self.config
        self.losses_: list[float] = []
        self.history_: list[tuple[int, dict[str, float]]] = []
        self.steps_done_, self.seconds_, self.finished_ = 0, 0.0, False
        self.model_, self.peft_model_ = adapted_copy(lm, cfg, cfg.seed, max_bytes=self.max_bytes)
        model = self.model_.model
        params = trainable_parameters(model)
        self.n_trainable_ = sum(p.numel() for p in params)
        seq_len = min(cfg.seq_len, lm.cfg.n_ctx)
        task_rows = pack_rows(lm, _cycle(task.texts, cfg.train_rows * seq_len, cfg.seed), seq_len)
        n_replay = round(cfg.replay * cfg.batch)
        replay_rows = None
        if n_replay:
            replay_rows = pack_rows(lm, corpus_texts(cfg.train_rows * 4, seed=cfg.seed), seq_len)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        start = time.perf_counter()

        def measure(step: int) -> dict[str, float] | None:
            if suite is None:
                return None
            model.eval()
            skills = suite.measure(self.model_)
            model.train()
            self.history_.append((step, skills))
            return skills

        try:
            model.train()
            measure(0)
            for step in range(1, cfg.steps + 1):
                idx = torch.randint(len(task_rows), (cfg.batch - n_replay,), generator=gen)
                rows = task_rows[idx]
                if replay_rows is not None:
                    ridx = torch.randint(len(replay_rows), (n_replay,), generator=gen)
                    rows = torch.cat([rows, replay_rows[ridx]])  # [batch, seq_len]
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                    logits = model(input_ids=rows, use_cache=False).logits  # [batch, pos, d_vocab]
                    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), rows[:, 1:].flatten())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.losses_.append(loss.item())
                self.steps_done_ = step
                self.seconds_ = time.perf_counter() - start
                last = step == cfg.steps
                due = last or (cfg.eval_every and step % cfg.eval_every == 0)
                skills = measure(step) if due else None
                if callback is not None and callback(Progress(step, cfg.steps, self.losses_[-1],
                                                              self.seconds_, skills)) is False:
                    break
            self.finished_ = self.steps_done_ == cfg.steps
        finally:
            model.eval()
            model.requires_grad_(False)
            for p in params:  # the last step's gradients would stay as long as the copy (full FT: its size)
                p.grad = None
            self.seconds_ = time.perf_counter() - start
        return self

    def measure_last(self, suite: SkillSuite) -> None:
        """After a stop between measurements, measure the skills at the step reached."""
        if self.steps_done_ and (not self.history_ or self.history_[-1][0] != self.steps_done_):
            self.history_.append((self.steps_done_, suite.measure(self.model_)))


def _cycle(texts, n_tokens: int, seed: int) -> list[str]:
    """Texts repeated in shuffled rounds until they hold about n_tokens words (and more)."""
    gen = torch.Generator().manual_seed(seed)
    out, words = [], 0
    while words < n_tokens:
        for i in torch.randperm(len(texts), generator=gen).tolist():
            out.append(texts[i])
            words += len(texts[i].split()) + 2
    return out
