"""The LoRA page's experiment settings: one form (nothing trains until "Train" is pressed), every
value bound to the URL so a shared link sets up the same experiment."""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from core.interp.finetune.config import METHODS, ROLES, FinetuneConfig
from core.interp.finetune.tasks import TASKS

RANKS = [1, 2, 4, 8, 16, 32, 64]
ALPHAS = [1, 2, 4, 8, 16, 32, 64, 128]
LRS = [1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]
REPLAY_PCT = [0, 25, 50, 75]  # percent: a bound widget writes its label into the URL
IA3_LR = 1e-2  # IA3 learns a few thousand scales; it needs a larger step than LoRA
# Short labels: bound widgets write the label of the choice into the URL.
TASK_LABELS = {"changed_fact": "Changed fact", "story_style": "New story style", "new_word": "New word"}
ROLE_LABELS = {"attn_qkv": "attn qkv", "attn_out": "attn out", "mlp_in": "MLP in", "mlp_out": "MLP out"}
COMPARE_LABELS = {"full": "Full FT", "ia3": "IA3"}


@dataclass(frozen=True)
class Settings:
    task: str
    lora: FinetuneConfig
    compare: tuple[str, ...]  # extra methods trained for comparison: "full", "ia3"
    full_lr: float

    def configs(self) -> dict[str, FinetuneConfig]:
        """Run label -> config, LoRA first."""
        out = {f"LoRA r={self.lora.rank}": self.lora}
        if "full" in self.compare:
            out[METHODS["full"]] = replace(self.lora, method="full", lr=self.full_lr)
        if "ia3" in self.compare:
            out[METHODS["ia3"]] = replace(self.lora, method="ia3", lr=IA3_LR)
        return out

    def describe(self) -> str:
        c = self.lora
        return (f"{TASKS[self.task]}; LoRA r={c.rank}, alpha={c.alpha:g} on "
                f"{', '.join(ROLES[r] for r in c.roles)}; lr {c.lr:g}, {c.steps} steps, "
                f"replay {c.replay:.0%}, seed {c.seed}")


def _lr(x: float) -> str:
    return f"{x:g}"


def settings_form() -> tuple[Settings | None, bool]:
    """The form; returns (settings, whether Train was pressed). Settings is None if invalid."""
    with st.form("lora_form", border=True):
        top = st.columns([2, 2, 1])
        task = top[0].selectbox("What to teach", list(TASKS), format_func=TASK_LABELS.get, key="lora_task",
                                bind="query-params", help="  \n".join(TASKS.values()))
        roles = top[1].pills("Matrices to adapt", list(ROLES), selection_mode="multi", default=list(ROLES),
                             format_func=ROLE_LABELS.get, key="lora_roles", bind="query-params",
                             help="Which weight matrices of every block get a LoRA (or IA3) adapter.")
        seed = top[2].number_input("Seed", 0, 10_000, 0, key="lora_seed", bind="query-params")
        row = st.columns(4)
        rank = row[0].select_slider("LoRA rank r", RANKS, value=8, key="lora_rank", bind="query-params",
                                    help="The update B @ A has rank at most r.")
        alpha = row[1].select_slider("LoRA alpha", ALPHAS, value=16, key="lora_alpha", bind="query-params",
                                     help="The update is scaled by alpha / r.")
        lr = row[2].select_slider("Learning rate (LoRA)", LRS, value=1e-3, format_func=_lr, key="lora_lr",
                                  bind="query-params")
        steps = row[3].slider("Steps", 10, 600, FinetuneConfig.steps, step=10, key="lora_steps",
                              bind="query-params",
                              help=f"Batches of {FinetuneConfig.batch} rows x {FinetuneConfig.seq_len} "
                                   "tokens.")
        row = st.columns([2, 2, 2, 2])
        replay = row[0].select_slider("Replay of original data (%)", REPLAY_PCT, value=0, key="lora_replay",
                                      bind="query-params",
                                      help="Share of every batch taken from the original corpus: a defence "
                                           "against forgetting.")
        compare = row[1].pills("Compare with", ["full", "ia3"], selection_mode="multi", default=["full"],
                               format_func=COMPARE_LABELS.get, key="lora_compare", bind="query-params",
                               help="Also fine-tune the same copy fully, or with IA3, on the same data.")
        full_lr = row[2].select_slider("Learning rate (full fine-tuning)", LRS, value=2e-4, format_func=_lr,
                                       key="lora_full_lr", bind="query-params",
                                       help="Full fine-tuning moves every weight: it needs a smaller step.")
        eval_every = row[3].select_slider("Measure old skills every (steps)", [5, 10, 25, 50],
                                          value=FinetuneConfig.eval_every, key="lora_eval_every",
                                          bind="query-params",
                                          help="Each measurement runs the IOI, facts, induction, "
                                               "validation and task probes: more often draws finer curves, "
                                               "and costs time.")
        pressed = st.form_submit_button("Train", type="primary", icon=":material/model_training:",
                                        key="lora_train")
    if not roles:
        st.warning("Pick at least one kind of matrix to adapt.", icon=":material/warning:")
        return None, False
    cfg = FinetuneConfig(method="lora", roles=tuple(r for r in ROLES if r in roles), rank=int(rank),
                         alpha=float(alpha), lr=float(lr), steps=int(steps), replay=replay / 100,
                         seed=int(seed), eval_every=int(eval_every))
    return Settings(task, cfg, tuple(compare or ()), float(full_lr)), pressed
