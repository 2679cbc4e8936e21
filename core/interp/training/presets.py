"""Presets: settings known to produce a phenomenon, each proven by a slow test.

tests/unit/test_training_presets.py trains every preset that makes a claim, on one thread, and
asserts the claim from the run's own verdicts; benchmarks/bench_training.py records how long each
took. `seconds` below is that measurement (one torch thread, CPU time, on a quiet 2-core Xeon on
2026-12-07: induction 31.2 s, one layer 16.3 s, trap 20.6 s, grokking 63.4 s), which the page quotes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.interp.training.architecture import ModelSettings
from core.interp.training.settings import TrainSettings
from core.interp.training.tasks import TaskSettings


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    settings: TrainSettings
    shows: str  # what the run is known to show (proven by a slow test when `proven`)
    seconds: float  # measured on one thread (benchmarks/bench_training.py)
    proven: bool = True


# The induction recipe (measured; see core.interp.training.architecture): attention-only, no LayerNorm
# inside the blocks, every matrix ~ N(0, 0.1), untied unembedding, AdamW without gradient clipping.
LR, STEPS = 5e-3, 1500  # the induction recipe's learning rate and length
INDUCTION_MODEL = ModelSettings(n_layers=2, n_heads=4, d_model=64, mlp=False, positions="learned", tied=False,
                                block_norms=False, init_std=0.1)
INDUCTION = Preset(
    "induction", "Induction head (2 layers)",
    TrainSettings(task=TaskSettings(kind="induction", vocab=16, n_ctx=48, min_segment=8, max_segment=20),
                  model=INDUCTION_MODEL, lr=LR, weight_decay=0.01, batch=64, steps=STEPS, seed=0,
                  log_every=50, betas=(0.9, 0.999), grad_clip=None),
    "an induction head forms in a jump, and the repeated half's loss falls below the first half's", 31.0)

ONE_LAYER = Preset(
    "one_layer", "One layer on the same data",
    TrainSettings(task=INDUCTION.settings.task,
                  model=replace(INDUCTION_MODEL, n_layers=1), lr=LR, weight_decay=0.01, batch=64, steps=STEPS,
                  seed=0, log_every=50, betas=(0.9, 0.999), grad_clip=None),
    "no induction head forms: one layer cannot compose a previous-token head with a matching head", 16.0)

TRAP = Preset(
    "trap", "The trap: copy at a fixed offset",
    TrainSettings(task=TaskSettings(kind="fixed_offset", vocab=16, n_ctx=48, period=12),
                  model=INDUCTION_MODEL, lr=LR, weight_decay=0.01, batch=64, steps=1000, seed=0,
                  log_every=50, betas=(0.9, 0.999), grad_clip=None),
    "the copies are predicted by position, not by content: repeats at another distance are not", 21.0)

GROKKING = Preset(
    "grokking", "Grokking: modular addition",
    TrainSettings(task=TaskSettings(kind="modular_addition", p=53, train_fraction=0.4),
                  model=ModelSettings(n_layers=1, n_heads=4, d_model=64, mlp=True, positions="learned",
                                      tied=False, block_norms=False),
                  lr=3e-3, weight_decay=1.0, batch=4096, steps=1400, seed=0, log_every=50),
    "it memorises the training pairs first and generalises much later: the train/test gap closes", 63.0)

GRAMMAR = Preset(
    "grammar", "The bundled grammar (a slice)",
    TrainSettings(task=TaskSettings(kind="grammar", n_ctx=64, families=("repeat_words", "arithmetic")),
                  model=ModelSettings(n_layers=2, n_heads=4, d_model=64, mlp=True, positions="learned"),
                  lr=3e-3, weight_decay=0.01, batch=32, steps=1000, seed=0, log_every=50),
    "a starting point: the loss falls as it learns the grammar's words and repeats", 60.0, proven=False)

CUSTOM = Preset(
    "custom", "Your own examples",
    TrainSettings(task=TaskSettings(kind="custom", n_ctx=48, level="char", text=(
        "abcabcabc\nxyzxyzxyz\nhello hello hello\nthe cat sat on the mat\nthe dog sat on the log\n"
        "one two three one two three\nred green blue red green blue")),
                  model=ModelSettings(n_layers=2, n_heads=4, d_model=64, mlp=True, positions="learned"),
                  lr=3e-3, weight_decay=0.01, batch=32, steps=600, seed=0, log_every=50),
    "a starting point: type your own lines", 30.0, proven=False)

PRESETS: dict[str, Preset] = {p.key: p for p in (INDUCTION, ONE_LAYER, TRAP, GROKKING, GRAMMAR, CUSTOM)}
DEFAULT = INDUCTION.key
