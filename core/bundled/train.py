"""Train the bundled model from scratch: `python -m core.bundled.train` (minutes on a CPU).

The recipe, step by step:
1. Build the tokenizer from the world's word list (core.world.tokenizer).
2. Generate the corpus: steps x batch rows of 128 token ids, each row packed with whole documents
   that start with BOS (core.world.corpus). Every row is used once; the seed fixes all of it.
3. Build a GPT-2 model: 4 layers, 4 heads, d_model 128, d_mlp 512, learned positions, tied
   embedding and unembedding, exact GELU, no dropout (about 1M parameters).
4. Minimise next-token cross-entropy with AdamW (lr 2e-3, betas 0.9/0.95, weight decay 0.1 on
   matrices), 100 warm-up steps then a cosine decay to 10% of the peak rate. Matrix products run
   in bfloat16 (autocast; the weights themselves stay float32), as they did when the committed
   checkpoint was trained, so that the recipe reproduces it. That is fixed, not measured: on the
   CPU with AMX that trained it bfloat16 was several times faster than float32, but on a CPU
   without AMX it can be slower (core.models.dtype). --no-bf16 trains in float32.
5. Save config.json, model.safetensors and the tokenizer into assets/bundled/ with save_pretrained,
   plus train_log.txt (the loss every 50 steps) and train_log.json (settings, final loss, time, and
   which tokens the corpus contained). Then run `python -m core.bundled.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, GPT2Config

from core.interp.embeddings.positions import sinusoidal
from core.models.loss import next_token_loss
from core.models.params import count_params
from core.world.corpus import build_corpus
from core.world.tokenizer import N_CTX, save_tokenizer, vocabulary

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "bundled"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 6000
    batch: int = 32
    n_ctx: int = N_CTX
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    pos_embed_decay: bool = False  # sharp positional attention needs a position table free to grow
    sinusoidal_init: bool = False
    small_alphabet: float = 0.0  # share of random-id runs drawn from a few ids (see corpus)
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    bf16: bool = True  # fixed, not measured (core.models.dtype): the committed checkpoint was trained so
    seed: int = 1  # the shipped checkpoint; seeds 0, 2-5 formed no sharp previous-token head
    threads: int = 1  # one thread: robust when other programs share the CPU (2 can stall)
    log_every: int = 50


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine from lr down to min_lr_ratio * lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def build_model(cfg: TrainConfig, vocab_size: int, pad_id: int | None = None):
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=cfg.n_ctx, n_embd=cfg.d_model, n_layer=cfg.n_layers,
        n_head=cfg.n_heads, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=0, eos_token_id=0, pad_token_id=pad_id, tie_word_embeddings=True,
    )
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    if cfg.sinusoidal_init:
        with torch.no_grad():
            model.get_submodule("transformer.wpe").weight.copy_(sinusoids(cfg.n_ctx, cfg.d_model))
    return model


def sinusoids(n_ctx: int, d_model: int, norm: float = 1.0) -> torch.Tensor:
    """[n_ctx, d_model] sinusoidal encodings (Vaswani et al.), each row scaled to the given norm.
    Starting the learned position table here gives it the high frequencies that tell neighbouring
    positions apart, which a sharp previous-token head needs."""
    table = torch.from_numpy(sinusoidal(n_ctx, d_model)).float()  # rows have norm sqrt(d_model/2)
    return table * norm / (d_model / 2) ** 0.5


def optimizer_for(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (and on the position table only if pos_embed_decay)."""
    params = {id(p): p for p in model.parameters()}.values()  # tied weights counted once
    wpe = model.get_submodule("transformer.wpe").weight
    exempt = set() if cfg.pos_embed_decay else {id(wpe)}
    decay = [p for p in params if p.ndim >= 2 and id(p) not in exempt]
    no_decay = [p for p in params if p.ndim < 2 or id(p) in exempt]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def lm_loss(model, tokens: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=tokens, use_cache=False).logits  # [batch, pos, d_vocab]
    return next_token_loss(logits, tokens)


def train_step(model, opt, rows: torch.Tensor, step: int, cfg: TrainConfig) -> float:
    """One optimiser step of the recipe on batch `step` of the corpus rows; returns its loss.
    core.bundled.timeline replays the recipe through this same function."""
    for group in opt.param_groups:
        group["lr"] = learning_rate(step, cfg)
    tokens = rows[step * cfg.batch: (step + 1) * cfg.batch]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        loss = lm_loss(model, tokens)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    return loss.item()


def train(cfg: TrainConfig, out: Path) -> dict:
    """Train, save into `out`, and return the summary written to train_log.json."""
    start = time.time()
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = save_tokenizer(out)
    vocab_size = len(vocabulary())
    assert len(tokenizer) == vocab_size
    bar = tqdm(total=cfg.steps * cfg.batch, desc="corpus rows", unit="row")
    corpus = build_corpus(cfg.steps * cfg.batch, cfg.seed, cfg.n_ctx,
                          progress=lambda n: bar.update(n - bar.n),
                          small_alphabet=cfg.small_alphabet)
    bar.close()
    model = build_model(cfg, vocab_size, tokenizer.pad_token_id)
    n_params = count_params(model)
    opt = optimizer_for(model, cfg)
    model.train()
    log_lines, curve, recent = [], [], []
    log_path = out / "train_log.txt"
    bar = tqdm(range(cfg.steps), desc="training", unit="step")
    for step in bar:
        recent.append(train_step(model, opt, corpus.rows, step, cfg))
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            mean = sum(recent) / len(recent)
            recent = []
            curve.append((step + 1, round(mean, 4)))
            bar.set_postfix(loss=f"{mean:.3f}")
            lr = learning_rate(step, cfg)
            log_lines.append(f"step {step + 1:5d}  loss {mean:.4f}  lr {lr:.2e}"
                             f"  elapsed {time.time() - start:6.0f}s")
            log_path.write_text("\n".join(log_lines) + "\n")
    model.eval()
    save_atomically(model, out)
    summary = {
        "settings": asdict(cfg), "n_params": n_params, "vocab_size": vocab_size,
        "final_loss": curve[-1][1], "loss_curve": curve,
        "wall_time_s": round(time.time() - start, 1), "torch": torch.__version__,
        "corpus": {"rows": corpus.rows.shape[0], "tokens": corpus.rows.numel(),
                   "family_tokens": corpus.family_tokens, "unseen_token_ids": corpus.unseen_ids,
                   "min_token_count": int(corpus.token_counts[3:].min())},
    }
    (out / "train_log.json").write_text(json.dumps(summary, indent=1))
    return summary


def save_atomically(model, out: Path) -> None:
    """save_pretrained into a scratch folder, then move each file over the old one.

    A running app memory-maps model.safetensors; overwriting that file in place would change the
    weights under it (or crash it). os.replace swaps the directory entry instead, so a reader keeps
    the old file until it reopens, and never sees a half-written one."""
    scratch = out / ".saving"
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(str(scratch))
    for path in scratch.iterdir():
        os.replace(path, out / path.name)
    scratch.rmdir()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--heads", type=int, default=TrainConfig.n_heads)
    parser.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--no-bf16", action="store_true",
                        help="train in float32 instead of bfloat16 autocast. The recipe keeps bfloat16 "
                             "because the committed checkpoint was trained with it, whatever this CPU "
                             "runs faster; float32 is slower on a CPU with AMX and can be faster on one "
                             "without. Trained in float32, the weights will not match the committed ones.")
    parser.add_argument("--small-alphabet", type=float, default=TrainConfig.small_alphabet)
    parser.add_argument("--sinusoidal-init", action="store_true",
                        help="start the position table from sinusoids")
    parser.add_argument("--pos-embed-decay", action="store_true",
                        help="apply weight decay to the position table too")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    warmup = min(TrainConfig.warmup, max(1, args.steps // 10))
    cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                      n_heads=args.heads, pos_embed_decay=args.pos_embed_decay,
                      weight_decay=args.weight_decay,
                      sinusoidal_init=args.sinusoidal_init, small_alphabet=args.small_alphabet,
                      threads=args.threads, bf16=not args.no_bf16, warmup=warmup)
    summary = train(cfg, args.out)
    print(f"saved to {args.out}: final loss {summary['final_loss']:.4f}, "
          f"{summary['wall_time_s']:.0f}s, {summary['n_params']:,} parameters")
    print("next: python -m core.bundled.evaluate" + ("" if args.out == DEFAULT_OUT
                                                      else f" --model {args.out}"))


if __name__ == "__main__":
    main()
