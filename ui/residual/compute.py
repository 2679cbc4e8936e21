"""Cached computations behind the Residual stream page, and the tuned lens's live training.

Every result depends on the model, the prompt, and the interventions switched on in this session, so
each cached call takes `sig` (ui.common.interventions.signature) and runs under the active hooks.
The tuned lens is trained once per model and training text and kept for the server (every session
shares it); it is trained on the model without interventions and then applied to whatever stream
the page reads.

A model whose weights are not in this process (an NNsightLM: a model on NDIF, or the same backend run
here) is asked through small reads instead (core.interp.residual.reads): the same numbers, except
what needs the weights here (the tuned lens, the KL of the logit lens), which the page says.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from core.interp.residual import anatomy as A
from core.interp.residual import dla as D
from core.interp.residual import ground_truth as GT
from core.interp.residual import logit_lens as L
from core.interp.residual import reads as R
from core.interp.residual import tasks as T
from core.interp.residual import tuned_lens as TL
from core.interp.residual import verdicts as V
from core.world import datasets as world_data
from core.world.corpus import build_corpus
from ui.common.budget import check_session_fits
from ui.common.interventions import active_hooks
from ui.common.remote import cache_on_backend

MAX_TOKENS = 64  # the lens grid draws one column per token
TRAIN_ROWS, HELD_ROWS = 200, 40  # bundled corpus rows of 128 tokens: 25,400 and 5,080 streams
TRAIN_SEED, HELD_SEED = 101, 202
WORLD_DOCS, WORLD_HELD_DOCS = 300, 60  # for a hub model: the bundled world's stories as text
MAX_TEXT_TOKENS = 20_000  # pasted text is cut to this many tokens
HELD_FRACTION = 0.2  # of pasted text, held out for the KL comparison
KEEP_LENSES = 6  # tuned lenses kept per server
UPDATE_S = 0.3
TASK_PROMPTS = 64  # core.interp.residual.tasks.task_set's default


# -- prompt-level results ---------------------------------------------------------------------------
@cache_on_backend(max_entries=32, show_spinner=False)
def lens_grid(lm, tokens: tuple[int, ...], targets: tuple[int, ...], lens_key: tuple | None,
              sig: tuple) -> L.LensGrid:
    if not R.has_weights(lm):
        return R.lens_grid(lm, torch.tensor([tokens]), torch.tensor(targets), hooks=active_hooks(lm))
    record = trained(lm, lens_key) if lens_key is not None else None
    translate = record.lens.translate if record is not None else None
    return L.lens_grid(lm, torch.tensor([tokens]), torch.tensor(targets), translate=translate,
                       lens="tuned" if translate else "logit", hooks=active_hooks(lm))


@cache_on_backend(max_entries=32, show_spinner=False)
def final_top(lm, tokens: tuple[int, ...], sig: tuple) -> int:
    """The model's own top prediction after the last token (under the interventions)."""
    if not R.has_weights(lm):
        return R.final_top(lm, torch.tensor([tokens]), active_hooks(lm))
    with lm.hooks(active_hooks(lm)), torch.no_grad():
        return int(lm(torch.tensor([tokens]))[0, -1].argmax())


def readability(grid: L.LensGrid, answer: str) -> V.Readability:
    """The prompt's readability: where the model's own answer (its top prediction at the last token)
    becomes the lens's top prediction there, and stays so."""
    top1 = grid.top_ids[:, -1:, 0]  # [point, 1]
    answer_id = int(grid.final_top[-1])
    prob = np.array([[grid.top_probs[i, -1, 0] if grid.top_ids[i, -1, 0] == answer_id else 0.0]
                     for i in range(len(grid.layers))])
    return V.readability(top1, prob, [answer_id], grid.layers, lens=grid.lens, answer=answer)


@cache_on_backend(max_entries=32, show_spinner=False)
def dla(lm, tokens: tuple[int, ...], answer_id: int, other_id: int, answer: str, other: str,
        sig: tuple) -> D.DLAResult:
    n = len(tokens)
    how = D.direct_logit_attribution if R.has_weights(lm) else R.direct_logit_attribution
    return how(lm, torch.tensor([tokens]), [n - 1], [answer_id], [other_id],
                                      answer=answer, other=other, hooks=active_hooks(lm))


@cache_on_backend(max_entries=32, show_spinner=False)
def anatomy(lm, tokens: tuple[int, ...], skip_first: bool, sig: tuple) -> A.StreamAnatomy:
    if not R.has_weights(lm):  # only when it fits (views check R.anatomy_fits first)
        return R.anatomy(lm, torch.tensor([tokens]), skip_first=skip_first, hooks=active_hooks(lm))
    return A.stream_anatomy(lm, torch.tensor([tokens]), skip_first=skip_first, hooks=active_hooks(lm))


@cache_on_backend(max_entries=16, show_spinner="Reading the task's prompts at every layer...")
def task_truth(lm, task: str, lens_key: tuple | None, sig: tuple) -> GT.TaskTruth:
    hooks = active_hooks(lm)
    if not R.has_weights(lm):
        return R.task_truth(lm, T.task_set(lm, task, n=task_prompts(lm, bool(hooks))), hooks)
    record = trained(lm, lens_key) if lens_key is not None else None
    ts = T.task_set(lm, task)
    return GT.task_truth(lm, ts, record.lens.translate if record else None, hooks=hooks)


def task_prompts(lm, hooks: bool = False) -> int:
    """Prompts per task: TASK_PROMPTS, or fewer where one request would bring back too much
    (core.interp.residual.reads.MAX_READ_BYTES)."""
    return TASK_PROMPTS if R.has_weights(lm) else min(TASK_PROMPTS, R.task_prompts(lm, hooks))


# -- the tuned lens --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TunedRecord:
    lens: TL.TunedLens
    key: tuple
    source: str  # in words: "the bundled corpus (25,400 tokens)"
    kl: V.LensComparison  # on held-out text
    n_train: int
    n_held: int
    seconds: float


@st.cache_resource(show_spinner=False)
def _lenses() -> dict:
    """Trained tuned lenses for the whole server: (spec, data key) -> TunedRecord, oldest first, at most
    KEEP_LENSES of them (each holds a d_model x d_model matrix per layer). Change it under _lenses_lock()."""
    return {}


@st.cache_resource(show_spinner=False)
def _lenses_lock() -> threading.Lock:
    """Guards _lenses(): sessions run in their own threads and share it (one lock per server, like it)."""
    return threading.Lock()


def keep(record: TunedRecord) -> None:
    """Keep a trained lens for the server: the newest of at most KEEP_LENSES, the oldest evicted first.
    A lens trained again for the same key replaces the old one and counts as the newest."""
    with _lenses_lock():
        store = _lenses()
        store.pop(record.key, None)
        while len(store) >= KEEP_LENSES:
            store.pop(next(iter(store)))
        store[record.key] = record


def data_key(lm, source: str, text: str = "") -> tuple:
    if source == "text":
        return (lm.spec, "text", hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16])
    return (lm.spec, source)


def trained(lm, key: tuple | None) -> TunedRecord | None:
    if key is None:
        return None
    with _lenses_lock():
        return _lenses().get(key)


def default_settings(lm) -> dict:
    """Training settings: a big vocabulary makes each step expensive, so fewer, smaller steps."""
    if lm.cfg.d_vocab <= 5000:
        return dict(steps=200, lr=5e-3, batch_tokens=256, init="zero")
    return dict(steps=40, lr=2e-3, batch_tokens=32, init="least_squares")


def _text_rows(lm, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pasted text as rows of at most min(n_ctx, 256) tokens (BOS first), cut to MAX_TEXT_TOKENS."""
    width = min(lm.cfg.n_ctx, 256) - 1
    enc = lm.tokenizer(text, add_special_tokens=False)["input_ids"][:MAX_TEXT_TOKENS]
    chunks = [enc[i: i + width] for i in range(0, len(enc), width)]
    bos = int(lm.to_tokens("")[0, 0])
    rows = [[bos, *c] for c in chunks if len(c) >= 2]
    if not rows:
        raise ValueError("The training text is too short: paste at least a few sentences.")
    lengths = torch.tensor([len(r) for r in rows])
    out = torch.full((len(rows), int(lengths.max())), bos, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out, lengths


def _check_memory(lm, n_tokens: int, key: tuple) -> None:
    need = n_tokens * (lm.cfg.n_layers + 1) * lm.cfg.d_model * 4 * 1.2
    check_session_fits(f"tuned-lens:{key}", need, what=f"the streams of {n_tokens:,} tokens at every layer",
                       lower="a shorter training text")


def training_data(lm, source: str, text: str = "") -> tuple[TL.StreamData, TL.StreamData, str]:
    """(train, held-out, description) for the tuned lens. source: "corpus" or "text"."""
    if source == "text":
        rows, lengths = _text_rows(lm, text)
        _check_memory(lm, int(lengths.sum()), data_key(lm, source, text))
        data = TL.stream_data(lm, rows, lengths)
        if data.n_tokens < 10:
            raise ValueError("The training text is too short: paste at least a few sentences.")
        train, held = data.split(HELD_FRACTION)
        return train, held, f"your text ({data.n_tokens:,} tokens, the last {HELD_FRACTION:.0%} held out)"
    if lm.is_bundled:
        train = TL.stream_data(lm, build_corpus(TRAIN_ROWS, TRAIN_SEED).rows)
        held = TL.stream_data(lm, build_corpus(HELD_ROWS, HELD_SEED).rows)
        return train, held, (f"the bundled corpus ({train.n_tokens:,} tokens; {held.n_tokens:,} "
                             "held-out tokens from another seed)")
    rows, lengths = lm.tokenize_batch(world_data.corpus_texts(WORLD_DOCS, seed=TRAIN_SEED))
    _check_memory(lm, int(lengths.sum()), data_key(lm, source))
    train = TL.stream_data(lm, rows, lengths)
    h_rows, h_len = lm.tokenize_batch(world_data.corpus_texts(WORLD_HELD_DOCS, seed=HELD_SEED))
    held = TL.stream_data(lm, h_rows, h_len)
    return train, held, (f"the bundled world's stories as text ({train.n_tokens:,} tokens; "
                         f"{held.n_tokens:,} held-out tokens)")


def train_live(lm, source: str, text: str = "") -> TunedRecord:
    """Train the tuned lens with a live status box (a Stop button ends it: nothing is kept)."""
    key = data_key(lm, source, text)
    settings = default_settings(lm)
    with st.status("Training the tuned lens...", expanded=True) as status:
        st.button("Stop", key="res_tuned_stop", icon=":material/stop_circle:",
                  help="Stop training; the page goes on with the logit lens alone.")
        start = time.perf_counter()
        st.write("Reading the stream at every layer for every training token...")
        train, held, about = training_data(lm, source, text)
        bar = st.progress(0.0)
        last = [0.0]

        def progress(lens: TL.TunedLens, point: TL.TrainPoint) -> None:
            now = time.perf_counter()
            if now - last[0] < UPDATE_S and point.step < settings["steps"]:
                return
            last[0] = now
            bar.progress(point.step / max(1, settings["steps"]),
                         text=f"step {point.step} / {settings['steps']}: mean KL to the output "
                              f"{np.mean(point.kl):.3f} nats")

        lens = TL.TunedLens(**settings).fit(lm, train, progress=progress)
        kl = V.compare_lenses(L.stream_points(lm), TL.kl_per_layer(lm, held),
                              TL.kl_per_layer(lm, held, lens))
        record = TunedRecord(lens, key, about, kl, train.n_tokens, held.n_tokens,
                             time.perf_counter() - start)
        keep(record)
        status.update(label=f"Tuned lens trained in {record.seconds:.1f} s on {about}", state="complete",
                      expanded=False)
    return record
