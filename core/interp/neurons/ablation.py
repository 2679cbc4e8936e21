"""Knock-out: remove one neuron and measure what the model loses, family by family.

Zero ablation sets the neuron's activation (after the nonlinearity) to 0 at every position; mean
ablation sets it to its mean over a corpus, which removes what the neuron says about *this* input
while keeping its average push (zero can be far from anything the next layers ever saw). The
measure is the next-token loss (cross-entropy, nats) on fresh text of each family of the world
(stories, IOI sentences, facts, arithmetic, repeated words, repeated random token ids): the increase
says which kind of text needs the neuron. Most single neurons matter little: the model spreads what
it knows over many of them. A change works both ways: on some text the loss can *drop* without the
neuron (it was pushing towards wrong answers there); a change of MATTERS nats or more either way
counts, and the page says which way it went.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from core.models import act_name
from core.world import grammar as G
from core.world.corpus import document_ids
from core.world.tokenizer import piece_ids, vocabulary

MODES = ("zero", "mean")
FAMILY_WORDS = {"story": "stories", "ioi": "IOI sentences", "facts": "facts", "arithmetic": "arithmetic",
                "repeat_words": "repeated words", "random_ids": "repeated random tokens"}
MATTERS = 0.01  # nats: a loss change at least this big on a family counts (a rise: "it needs the neuron")


def ablation_hook(neuron: int, value: float):
    """fn(act, hook) setting one neuron of mlp.hook_post [batch, pos, d_mlp] to `value`."""
    def fn(act, hook):
        out = act.clone()
        out[..., neuron] = value
        return out
    return fn


@dataclass(frozen=True)
class FamilyText:
    family: str
    tokens: torch.Tensor  # [n, pos]
    mask: torch.Tensor  # [n, pos] bool: the token is real (its prediction counts)


def family_texts(lm, n_docs: int = 24, seed: int = 0) -> list[FamilyText]:
    """Fresh documents of every family: token ids of the bundled world for the bundled model, else
    the text families as text plus repeated random ids from the model's vocabulary."""
    rng = random.Random(seed)
    out = []
    for family in FAMILY_WORDS:
        if lm.is_bundled:
            ids, vocab = piece_ids(), len(vocabulary())
            rows = [document_ids(rng, family, ids, vocab)[: lm.cfg.n_ctx] for _ in range(n_docs)]
        elif family == "random_ids":
            from core.world.datasets import induction_tokens
            t = induction_tokens(n_docs, 20, seed, vocab_size=min(lm.cfg.d_vocab, len(lm.tokenizer)),
                                 bos_id=int(lm.to_tokens("")[0, 0]), exclude=lm.tokenizer.all_special_ids)
            rows = [r.tolist()[: lm.cfg.n_ctx] for r in t]
        else:
            texts = [G.text(G.document_words(G.document(rng, family))) for _ in range(n_docs)]
            toks, lengths = lm.tokenize_batch(texts)
            rows = [toks[i, : int(lengths[i])].tolist() for i in range(len(texts))]
        lengths = torch.tensor([len(r) for r in rows])
        tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, : len(r)] = torch.tensor(r)
        out.append(FamilyText(family, tokens, torch.arange(tokens.shape[1])[None, :] < lengths[:, None]))
    return out


@dataclass(frozen=True)
class KnockOut:
    layer: int
    neuron: int
    mode: str
    value: float
    families: tuple[str, ...]
    clean: np.ndarray  # [family] mean loss, nats
    ablated: np.ndarray  # [family]
    n_tokens: np.ndarray  # [family]

    @property
    def delta(self) -> np.ndarray:
        return self.ablated - self.clean

    @property
    def largest(self) -> int:
        """The family whose loss moved most, either way: argmax |delta|."""
        return int(np.argmax(np.abs(self.delta)))

    @property
    def matters(self) -> tuple[str, ...]:
        """Families whose loss rises by at least MATTERS nats."""
        return tuple(f for f, d in zip(self.families, self.delta, strict=True) if d >= MATTERS)

    @property
    def helps(self) -> tuple[str, ...]:
        """Families whose loss drops by at least MATTERS nats: the model does better without it."""
        return tuple(f for f, d in zip(self.families, self.delta, strict=True) if d <= -MATTERS)


def knock_out(lm, layer: int, neuron: int, texts: list[FamilyText], *, mode: str = "zero",
              mean: float = 0.0, hooks=()) -> KnockOut:
    """Mean next-token loss per family with and without the neuron (mode "zero" or "mean")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not 0 <= neuron < lm.cfg.d_mlp:
        raise ValueError(f"Neuron {neuron} does not exist: layer {layer} has {lm.cfg.d_mlp} neurons "
                         f"(0 to {lm.cfg.d_mlp - 1}).")
    value = 0.0 if mode == "zero" else float(mean)
    knock = [(act_name("post", layer), ablation_hook(neuron, value))]
    clean, ablated, counts = [], [], []
    for t in texts:
        with lm.hooks(list(hooks)), torch.no_grad():
            base = lm.loss(t.tokens, mask=t.mask)
            with lm.hooks(knock):
                hit = lm.loss(t.tokens, mask=t.mask)
        clean.append(float(base)), ablated.append(float(hit)), counts.append(int(t.mask[:, 1:].sum()))
    return KnockOut(layer, neuron, mode, value, tuple(t.family for t in texts), np.array(clean),
                    np.array(ablated), np.array(counts))
