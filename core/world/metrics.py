"""How well does the bundled model do what the world teaches? One function per behaviour.

Each metric runs the model on prompts it was not trained on word for word (fresh random names,
objects and places, or random token ids) and compares its next-token prediction with the answer the
generator knows:

- IOI: for "When Mary and John went to the store, John gave a drink to", the logit difference
  logit(" Mary") - logit(" John") and whether " Mary" is the top prediction. On held-out template
  pairs, this tests a pattern learned across templates, not a memorised sentence.
- induction: on BOS + x + x with x random token ids, the share of second-half tokens (after the
  first) that the model predicts exactly. Nothing but copying from the first half can do this.
- facts: top-1 accuracy on every fact prompt ("The capital of France is" -> " Paris").
- pronouns: after "Mary was happy because", is " she" more likely than " he"? The name is the only
  cue to the gender.
- limits: the same IOI test on sentences with a new intro, or with words the model never saw
  (<unk>), to measure how far the learned pattern reaches.
"""

from __future__ import annotations

import random

import torch

from core.world import grammar as G
from core.world import world as W
from core.world.datasets import (
    FactPrompt,
    IOIPrompt,
    PronounPrompt,
    induction_tokens,
)


def token_id(lm, word: str) -> int:
    """The id of a one-token word such as " Mary"; raises if it is several tokens."""
    ids = lm.to_tokens(word, prepend_bos=False)[0]
    if len(ids) != 1:
        raise ValueError(f"{word!r} is {len(ids)} tokens, not one")
    return int(ids[0])


@torch.no_grad()
def next_token_logits(lm, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Logits for the token after each text: [batch, d_vocab] (float32)."""
    out = []
    for i in range(0, len(texts), batch_size):
        tokens, lengths = lm.tokenize_batch(texts[i: i + batch_size])
        out.append(at_last_tokens(lm(tokens), lengths))  # lm(tokens): [batch, pos, d_vocab]
    return torch.cat(out)


def at_last_tokens(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """From logits [batch, pos, d_vocab] of right-padded rows, each row's logits at its last real
    token: [batch, d_vocab] float32 (the prediction of the token after the text)."""
    return logits[torch.arange(len(lengths)), lengths - 1].float()


def ioi_metrics(lm, prompts: list[IOIPrompt]) -> dict:
    """accuracy (IO is the top-1 token), io_beats_s (logit IO > logit S), mean_logit_diff."""
    logits = next_token_logits(lm, [p.clean for p in prompts])
    io = torch.tensor([token_id(lm, p.io) for p in prompts])
    s = torch.tensor([token_id(lm, p.s) for p in prompts])
    return ioi_scores(logits, io, s)


def ioi_scores(logits: torch.Tensor, io: torch.Tensor, s: torch.Tensor) -> dict:
    """ioi_metrics from next-token logits [batch, d_vocab] and the IO and S token ids [batch]."""
    rows = torch.arange(len(io))
    diff = logits[rows, io] - logits[rows, s]
    return {"n": len(io), "accuracy": float((logits.argmax(-1) == io).float().mean()),
            "io_beats_s": float((diff > 0).float().mean()), "mean_logit_diff": float(diff.mean())}


def induction_batch(lm, n: int = 64, half_len: int = 30, seed: int = 0) -> torch.Tensor:
    """BOS + x + x with x random ids for this model (no special tokens in x): [n, 1 + 2 half_len]."""
    return induction_tokens(n, half_len, seed, vocab_size=lm.cfg.d_vocab, bos_id=lm.tokenizer.bos_token_id,
                            exclude=lm.tokenizer.all_special_ids)


def induction_score(logits: torch.Tensor, tokens: torch.Tensor, half_len: int) -> float:
    """Top-1 accuracy on the second half of induction_batch's tokens, from the logits on them."""
    # position p predicts token p + 1; targets are the second half after its first token
    pred = logits[:, half_len + 1: -1].argmax(-1)
    target = tokens[:, half_len + 2:]
    return float((pred == target).float().mean())


@torch.no_grad()
def induction_accuracy(lm, n: int = 64, half_len: int = 30, seed: int = 0) -> float:
    """Top-1 accuracy on the second half of BOS + x + x (x random ids), first copy excluded."""
    tokens = induction_batch(lm, n, half_len, seed)
    return induction_score(lm(tokens), tokens, half_len)  # lm(tokens): [batch, pos, d_vocab]


def fact_accuracy(lm, prompts: list[FactPrompt]) -> tuple[float, list[str]]:
    """Top-1 accuracy and the prompts it got wrong ("prompt -> predicted (expected)")."""
    logits = next_token_logits(lm, [p.prompt for p in prompts])
    pred = logits.argmax(-1).tolist()
    wrong = [f"{p.prompt} ->{lm.tokenizer.decode([i])} (expected{p.answer})"
             for p, i in zip(prompts, pred, strict=True) if i != token_id(lm, p.answer)]
    return 1 - len(wrong) / len(prompts), wrong


def pronoun_metrics(lm, prompts: list[PronounPrompt]) -> dict:
    """agreement: logit(correct pronoun) > logit(other gender's); top1: correct is the top token."""
    logits = next_token_logits(lm, [p.prompt for p in prompts])
    good = torch.tensor([token_id(lm, p.correct) for p in prompts])
    bad = torch.tensor([token_id(lm, p.wrong) for p in prompts])
    rows = torch.arange(len(prompts))
    return {"n": len(prompts),
            "agreement": float((logits[rows, good] > logits[rows, bad]).float().mean()),
            "top1": float((logits.argmax(-1) == good).float().mean())}


NOVEL_IOI = {  # limits: intros and actions the grammar never uses
    "new phrasing, known words": (
        "{A} and {B} went to the {place} . Then {S} gave a {object} to",
        "At the {place} , {A} and {B} were happy , and {S} gave the {object} to",
    ),
    "unknown words": (
        "When {A} and {B} visited the {place} , {S} tossed a {object} to",
        "Yesterday {A} and {B} played at the {place} , so {S} threw a {object} to",
    ),
}


def novel_ioi_prompts(kind: str, n: int, seed: int = 0) -> list[IOIPrompt]:
    """IOI prompts in frames from NOVEL_IOI[kind], to measure the limits of the learned pattern."""
    rng = random.Random(seed)
    frames = NOVEL_IOI[kind]
    out = []
    for i in range(n):
        io, s = rng.sample(W.FEMALE_NAMES + W.MALE_NAMES, 2)
        a, b = (io, s) if rng.random() < 0.5 else (s, io)
        values = dict(A=a, B=b, S=s, place=rng.choice(W.PLACES), object=rng.choice(W.OBJECTS))
        words, _ = G.fill(frames[i % len(frames)], values)
        out.append(IOIPrompt(G.text(words), "", " " + io, " " + s, "", -1, -1, a == io, {}))
    return out
