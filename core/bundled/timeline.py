"""The bundled model's training, replayed: `python -m core.bundled.timeline` (about 15 minutes).

It retrains the bundled recipe of core.bundled.train step for step (the same corpus, seed,
initialisation, learning-rate schedule and bfloat16 autocast) and, every 100 steps, measures a
frozen copy of the model as it was then: every head's previous-token and induction score (the
Attention page's scorer, on its data), the in-context-learning score, an attention snapshot, and
the loss on held-out corpus rows. The log goes to assets/bundled/timeline.json, a small JSON file
the training page lets a learner scrub through. The checkpoint assets/bundled/model.safetensors is
only read, never written: the log records how far the retrained weights ended from it and the
committed model's own head scores, because a 6,000-step run with bfloat16 products does not end on
the same weights on another CPU (measured here: weights up to 1.42 apart; the same layers hold the
previous-token and induction heads, but not always the same heads).

Measuring never changes the training: it works on a deep copy, the copy's forward passes use no
random numbers, and the training model keeps the "eager" attention it was trained with.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from core.bundled.train import DEFAULT_OUT, TrainConfig, build_model, optimizer_for, train_step
from core.interp.training.log import Checkpoint, TrainingLog
from core.interp.training.metrics import head_fields, snapshot_tokens
from core.models.loading import wrap
from core.world.corpus import build_corpus
from core.world.tokenizer import build_tokenizer, vocabulary

TIMELINE_PATH = DEFAULT_OUT / "timeline.json"
LOG_EVERY = 100
HELDOUT_SEED, HELDOUT_ROWS = 7919, 64  # corpus rows never trained on (training uses seed 1)


def measure(model, tokenizer, step: int, heldout: torch.Tensor, train_loss: float | None,
            elapsed: float) -> Checkpoint:
    """A Checkpoint of a frozen copy of `model` (the training model itself is not touched)."""
    lm = wrap(copy.deepcopy(model), tokenizer, spec=f"bundled@{step}")
    with torch.no_grad():
        test_loss = float(lm.loss(heldout))
    return Checkpoint(step=step, train_loss=train_loss, test_loss=test_loss, elapsed_s=round(elapsed, 1),
                      **head_fields(lm))


def replay(cfg: TrainConfig | None = None, log_every: int = LOG_EVERY, stop_after: int | None = None,
           progress: Callable[[Checkpoint], None] | None = None) -> tuple[TrainingLog, torch.nn.Module]:
    """Train exactly as core.bundled.train.train does, logging every `log_every` steps (and at 0).

    stop_after: end after that many steps (the schedule still spans cfg.steps, so the first steps
    are those of the full run). Returns the log and the trained model."""
    start = time.time()
    cfg = cfg or TrainConfig()
    torch.set_num_threads(cfg.threads)
    tokenizer = build_tokenizer()
    vocab_size = len(vocabulary())
    n_steps = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
    # build_corpus draws row after row from one seeded generator, so the first rows of a shorter
    # corpus are the rows the full run trains on first
    corpus = build_corpus(n_steps * cfg.batch, cfg.seed, cfg.n_ctx, small_alphabet=cfg.small_alphabet)
    heldout = build_corpus(HELDOUT_ROWS, HELDOUT_SEED, cfg.n_ctx).rows
    model = build_model(cfg, vocab_size, tokenizer.pad_token_id)
    opt = optimizer_for(model, cfg)
    model.train()
    log = TrainingLog(meta={
        "title": "The bundled model's training, replayed", "task": "bundled",
        "recipe": asdict(cfg), "log_every": log_every,
        "heldout": {"seed": HELDOUT_SEED, "rows": HELDOUT_ROWS},
        "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "d_model": cfg.d_model, "d_vocab": vocab_size,
        "snapshot_tokens": tokenizer.convert_ids_to_tokens(snapshot_tokens(
            wrap(copy.deepcopy(model), tokenizer, spec="bundled@tokens"))[0].tolist()),
        "torch": torch.__version__, "threads": cfg.threads,
    })

    def record(step: int, train_loss: float | None) -> None:
        checkpoint = measure(model, tokenizer, step, heldout, train_loss, time.time() - start)
        log.checkpoints.append(checkpoint)
        if progress is not None:
            progress(checkpoint)

    record(0, None)
    recent: list[float] = []
    for step in range(n_steps):  # the loop of core.bundled.train.train, through its own step
        recent.append(train_step(model, opt, corpus.rows, step, cfg))
        if (step + 1) % log_every == 0 or step + 1 == n_steps:
            record(step + 1, sum(recent) / len(recent))
            recent = []
    log.meta["wall_time_s"] = round(time.time() - start, 1)
    return log, model


def committed_end(folder: Path = DEFAULT_OUT) -> dict:
    """The committed checkpoint measured as the log's steps are (head scores, ICL probe), so the
    replay's last step can be set beside the model every other page shows."""
    from core.models import load_model

    lm = load_model(str(folder))
    fields = head_fields(lm)
    return {"scores": fields["scores"], "first_half_loss": fields["first_half_loss"],
            "repeated_half_loss": fields["repeated_half_loss"]}


def checkpoint_difference(model, folder: Path = DEFAULT_OUT) -> float:
    """Largest |w_retrained - w_committed| over every tensor of the committed checkpoint."""
    committed = load_file(str(folder / "model.safetensors"))
    state = model.state_dict()
    return max(float((state[name].float() - tensor.float()).abs().max())
               for name, tensor in committed.items())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TIMELINE_PATH)
    parser.add_argument("--stop-after", type=int, default=None, help="end after this many steps")
    args = parser.parse_args(argv)

    def say(c: Checkpoint) -> None:
        best = c.best("induction") or 0.0
        print(f"step {c.step:5d}  test loss {c.test_loss:.3f}  icl {c.icl:+.3f}  "
              f"prev {c.best('previous_token'):.2f}  induction {best:.2f}  {c.elapsed_s:.0f}s", flush=True)

    log, model = replay(stop_after=args.stop_after, progress=say)
    if args.stop_after is None:
        log.meta["max_abs_diff_to_committed_checkpoint"] = checkpoint_difference(model)
        log.meta["committed_end"] = committed_end()
    log.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
