"""The training page's controls: a preset, then every knob of the task, the model and the training.

Every knob has a stable key and (except the typed examples, which can be long) is bound to the URL,
so a link reproduces a run's settings. Every knob's default is the chosen preset's value, so a link
holds exactly the knobs that differ from its preset (Streamlit leaves a widget's default out of the
URL). Choosing a preset writes its values into the knobs; moving a knob afterwards changes only that
knob. The learning rate and weight decay are typed as text so
that anything (NaN, "1e-3", "fast") can be typed and gets a clear answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.interp.training.architecture import POSITIONS, ModelSettings
from core.interp.training.presets import DEFAULT, PRESETS
from core.interp.training.settings import (
    MAX_BATCH,
    MAX_HEADS,
    MAX_N_CTX,
    MAX_P,
    MAX_STEPS,
    TrainSettings,
)
from core.interp.training.tasks import GRAMMAR_FAMILIES, TASKS, TaskSettings

PRESET_KEY = "train_preset"
TASK_LABELS = {
    "induction": "Induction (repeated random tokens)",
    "fixed_offset": "Copy at a fixed offset (the trap)",
    "modular_addition": "Modular addition (grokking)",
    "grammar": "The bundled grammar (a slice)",
    "custom": "Your own examples",
}
POSITION_LABELS = {"learned": "learned (GPT-2)", "rotary": "rotary (GPT-NeoX)", "none": "none"}
D_MODELS = [16, 24, 32, 48, 64, 96, 128, 192, 256]


@dataclass(frozen=True)
class Controls:
    settings: TrainSettings
    problems: tuple[str, ...]  # what could not even be read (a learning rate that is not a number)


def knob_values(s: TrainSettings) -> dict:
    """Widget key -> value for the settings (what choosing a preset writes into the knobs)."""
    t, m = s.task, s.model
    return {
        "train_task": t.kind,
        "train_vocab": t.vocab,
        "train_n_ctx": t.n_ctx,
        "train_segment": (t.min_segment, t.max_segment),
        "train_period": t.period,
        "train_p": t.p,
        "train_fraction": t.train_fraction,
        "train_families": list(t.families),
        "train_text": t.text,
        "train_level": t.level,
        "train_layers": m.n_layers,
        "train_heads": m.n_heads,
        "train_d_model": m.d_model,
        "train_mlp": m.mlp,
        "train_positions": m.positions,
        "train_block_norms": m.block_norms,
        "train_lr": f"{s.lr:g}",
        "train_wd": f"{s.weight_decay:g}",
        "train_batch": s.batch,
        "train_steps": s.steps,
        "train_seed": s.seed,
        "train_log_every": s.log_every,
    }


def _apply_preset() -> None:
    preset = PRESETS.get(st.session_state.get(PRESET_KEY), PRESETS[DEFAULT])
    for key, value in knob_values(preset.settings).items():
        st.session_state[key] = value


def _number(text: str, what: str, problems: list[str]) -> float:
    try:
        return float(str(text).strip())
    except ValueError:
        problems.append(f"The {what} {str(text)[:40]!r} is not a number (type something like 0.003 or 3e-3).")
        return float("nan")


def _task_knobs(kind: str, d: dict) -> TaskSettings:
    bind = {"bind": "query-params"}
    if kind in ("induction", "fixed_offset"):
        vocab = st.number_input(
            "Symbols (vocabulary)",
            2,
            1000,
            d["train_vocab"],
            key="train_vocab",
            **bind,
            help="How many different random tokens. Fewer: copies are easier to find.",
        )
        n_ctx = st.number_input("Sequence length", 8, MAX_N_CTX, d["train_n_ctx"], key="train_n_ctx", **bind)
        if kind == "induction":
            low, high = st.slider(
                "Copied segment length (drawn per sequence)",
                2,
                63,
                d["train_segment"],
                key="train_segment",
                **bind,
            )
            return TaskSettings(
                kind=kind, vocab=int(vocab), n_ctx=int(n_ctx), min_segment=int(low), max_segment=int(high)
            )
        period = st.number_input(
            "Segment length (always the same: the copy is always this far back)",
            2,
            63,
            d["train_period"],
            key="train_period",
            **bind,
        )
        return TaskSettings(kind=kind, vocab=int(vocab), n_ctx=int(n_ctx), period=int(period))
    if kind == "modular_addition":
        p = st.number_input(
            "Modulus p",
            3,
            MAX_P,
            d["train_p"],
            key="train_p",
            **bind,
            help="a + b mod p. A prime gives the cleanest Fourier picture.",
        )
        fraction = st.slider(
            "Share of the p² pairs trained on",
            0.05,
            0.95,
            d["train_fraction"],
            step=0.05,
            key="train_fraction",
            **bind,
        )
        return TaskSettings(kind=kind, p=int(p), train_fraction=float(fraction))
    if kind == "grammar":
        families = st.multiselect(
            "Families of the bundled grammar",
            list(GRAMMAR_FAMILIES),
            d["train_families"],
            key="train_families",
            **bind,
        )
        n_ctx = st.number_input("Sequence length", 8, MAX_N_CTX, d["train_n_ctx"], key="train_n_ctx", **bind)
        return TaskSettings(kind=kind, families=tuple(families), n_ctx=int(n_ctx))
    text = st.text_area(
        "Your examples, one per line",
        d["train_text"],
        key="train_text",
        height=150,
        placeholder="the cat sat on the mat\nthe dog sat on the log",
    )
    level = st.radio(
        "Split into",
        ["word", "char"],
        ["word", "char"].index(d["train_level"]),
        key="train_level",
        horizontal=True,
        **bind,
        format_func=lambda v: "words and punctuation" if v == "word" else "characters",
    )
    n_ctx = st.number_input("Sequence length", 8, MAX_N_CTX, d["train_n_ctx"], key="train_n_ctx", **bind)
    return TaskSettings(kind=kind, text=text or "", level=level or "word", n_ctx=int(n_ctx))


def controls() -> Controls:
    """Draw the preset picker and the knobs; return the settings they describe (not yet checked)."""
    bind = {"bind": "query-params"}
    st.selectbox(
        "Start from a preset",
        list(PRESETS),
        key=PRESET_KEY,
        on_change=_apply_preset,
        **bind,
        format_func=lambda k: PRESETS[k].label,
        help="Each preset sets every knob below; a slow test proves what it shows.",
    )
    preset = PRESETS.get(st.session_state.get(PRESET_KEY), PRESETS[DEFAULT])
    d = knob_values(preset.settings)  # every knob's default: the preset's value (a link omits those)
    st.caption(
        f"{preset.label}: {preset.shows}"
        + (f" (about {preset.seconds:.0f} s on one thread)." if preset.proven else ".")
    )
    problems: list[str] = []
    task_col, model_col, train_col = st.columns(3)
    with task_col:
        st.markdown("**Task**")
        kind = st.selectbox(
            "Task",
            TASKS,
            TASKS.index(d["train_task"]),
            key="train_task",
            format_func=TASK_LABELS.get,
            **bind,
            label_visibility="collapsed",
        )
        task = _task_knobs(kind or "induction", d)
    with model_col:
        st.markdown("**Model**")
        layers = st.slider("Layers", 1, 3, d["train_layers"], key="train_layers", **bind)
        heads = st.number_input("Heads per layer", 1, MAX_HEADS, d["train_heads"], key="train_heads", **bind)
        d_model = st.selectbox(
            "d_model (width of the residual stream)",
            D_MODELS,
            D_MODELS.index(d["train_d_model"]),
            key="train_d_model",
            **bind,
        )
        mlp = st.toggle("MLPs (off: attention-only)", d["train_mlp"], key="train_mlp", **bind)
        block_norms = st.toggle(
            "LayerNorm inside the blocks (off: only before the unembedding)",
            d["train_block_norms"],
            key="train_block_norms",
            **bind,
            help="GPT-2 normalises the stream before every layer. The induction presets "
            "switch that off: with it, the same run finds a positional shortcut "
            "instead of an induction head (measured).",
        )
        positions = st.radio(
            "Positions",
            POSITIONS,
            POSITIONS.index(d["train_positions"]),
            key="train_positions",
            format_func=POSITION_LABELS.get,
            horizontal=True,
            **bind,
        )
    with train_col:
        st.markdown("**Training** (AdamW)")
        lr = _number(
            st.text_input("Learning rate", d["train_lr"], key="train_lr", **bind), "learning rate", problems
        )
        wd = _number(
            st.text_input("Weight decay", d["train_wd"], key="train_wd", **bind), "weight decay", problems
        )
        batch = st.number_input(
            "Batch (sequences per step)", 1, MAX_BATCH, d["train_batch"], key="train_batch", **bind
        )
        steps = st.number_input("Steps", 1, MAX_STEPS, d["train_steps"], step=100, key="train_steps", **bind)
        seed_col, log_col = st.columns(2)
        seed = seed_col.number_input("Seed", 0, 10_000, d["train_seed"], key="train_seed", **bind)
        log_every = log_col.number_input(
            "Measure every (steps)", 1, MAX_STEPS, d["train_log_every"], key="train_log_every", **bind
        )
    base = preset.settings  # what has no knob comes from the preset: initialisation, tying, betas, clipping
    model = ModelSettings(
        n_layers=int(layers),
        n_heads=int(heads),
        d_model=int(d_model or 64),
        mlp=bool(mlp),
        positions=positions or "learned",
        tied=base.model.tied and kind != "modular_addition",
        block_norms=bool(block_norms),
        init_std=base.model.init_std,
    )
    settings = TrainSettings(
        task=task,
        model=model,
        lr=lr,
        weight_decay=wd,
        batch=int(batch),
        steps=int(steps),
        seed=int(seed),
        log_every=int(log_every),
        betas=base.betas,
        grad_clip=base.grad_clip,
    )
    st.caption(f"From the preset: {fixed_words(settings)}.")
    return Controls(settings, tuple(problems))


def fixed_words(s: TrainSettings) -> str:
    """The settings without a knob, in words."""
    m = s.model
    init = (
        "GPT-2's initialisation (std 0.02, writes scaled down)"
        if m.init_std is None
        else f"every matrix initialised from N(0, {m.init_std:g}²)"
    )
    tied = "unembedding tied to the embedding" if m.tied else "unembedding separate from the embedding"
    clip = "no gradient clipping" if s.grad_clip is None else f"gradient norm clipped at {s.grad_clip:g}"
    return f"{init}; {tied}; AdamW betas {s.betas[0]:g} / {s.betas[1]:g}; {clip}"
