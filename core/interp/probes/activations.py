"""Collecting the activations a probe reads: every layer, one vector per text, one batched pass.

The texts are tokenized together (right-padded; with causal attention the padding never changes a
real position), run through the model once, and a hook at each requested hook point keeps only what
the probe needs: the vector at the last real token, at the marked word's last token, or the mean
over the real tokens after BOS (the BOS position is left out: in many models it holds an
"attention sink" with a huge norm that would swamp the mean). Nothing else is stored, so memory
grows with texts x layers x d_model, not with the length of the texts.

Sites: "resid" is the residual stream at every point, in the lab's one meaning of "layer": the
embeddings (the stream before block 0), then layer L = the stream after block L
(core.models.hook_names.stream_hook). "attn_out", "mlp_out", "mlp_post" (the MLP neurons) are what
block L writes or computes, so their "layer L" is block L itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.probes.data import POSITIONS, ProbeDataError
from core.models import HookedLM, act_name
from core.models.hook_names import layer_of, stream_hook, stream_layers

SITES = ("resid", "attn_out", "mlp_out", "mlp_post")
FLOAT_BUDGET = 1 << 25  # MLP-hidden floats per forward pass (128 MB): bigger batches are chunked
MAX_FLOATS = 40_000_000  # kept activations (texts x layers x width): 160 MB in float32


def max_texts(n_points: int, width: int, budget: int = MAX_FLOATS) -> int:
    """How many texts fit the memory budget when keeping n_points vectors of width per text."""
    return max(1, budget // (n_points * width))


@dataclass(frozen=True)
class HookPoints:
    """Where a probe reads, one entry per layer: layers[i] is the lab's layer number (EMBEDDINGS = -1
    for the stream before block 0) and hook_names[i] the hook point read there."""

    site: str
    layers: tuple[int, ...]
    hook_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.layers)


def hook_points(n_layers: int, site: str) -> HookPoints:
    """Every layer of one site: "resid" has n_layers + 1 points (the embeddings, then after each
    block: stream_hook), the others one per block."""
    if site == "resid":
        layers = tuple(stream_layers(n_layers))
        return HookPoints(site, layers, tuple(stream_hook(layer) for layer in layers))
    if site not in SITES:
        raise ValueError(f"site must be one of {SITES}, not {site!r}")
    hook_site = "post" if site == "mlp_post" else site
    return HookPoints(site, tuple(range(n_layers)), tuple(act_name(hook_site, i) for i in range(n_layers)))


def vector_width(cfg, site: str) -> int:
    """Floats per vector read at this site: d_mlp for the MLP neurons, d_model elsewhere."""
    return cfg.d_mlp if site == "mlp_post" else cfg.d_model


def marked_positions(lm: HookedLM, texts: Sequence[str], spans: Sequence[tuple[int, int]]
                     ) -> np.ndarray:
    """Token index (BOS = 0) of the last token overlapping each character span."""
    backend = getattr(lm.tokenizer, "backend_tokenizer", None)
    if backend is not None:  # the Rust tokenizer directly: ten times faster than the wrapper
        offset_lists = [e.offsets for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    else:
        offset_lists = lm.tokenizer(list(texts), add_special_tokens=False,
                                    return_offsets_mapping=True)["offset_mapping"]
    out = np.empty(len(texts), dtype=np.int64)
    for row, (offsets, (start, end)) in enumerate(zip(offset_lists, spans, strict=True)):
        hits = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        if not hits:
            raise ProbeDataError(f"The marked word {texts[row][start:end]!r} in {texts[row]!r} "
                                 f"matches no token of {lm.name}.")
        out[row] = hits[-1] + 1  # + 1 for BOS
    return out


def positions_for(lm: HookedLM, texts: Sequence[str], position: str, lengths: np.ndarray,
                  spans: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """The token index each text is read at ([batch]); -1 means "mean over tokens"."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, not {position!r}")
    if position == "last":
        return lengths - 1
    if position == "mean":
        return np.full(len(texts), -1)
    if spans is None:
        raise ProbeDataError("This dataset marks no token: read the last token or the mean instead.")
    pos = marked_positions(lm, texts, spans)
    cut = np.flatnonzero(pos >= lengths)
    if len(cut):
        raise ProbeDataError(f"{len(cut)} marked token(s) lie beyond the model's context window of "
                             f"{lm.cfg.n_ctx} tokens (first: {texts[cut[0]][:60]!r}...).")
    return pos


def _reduce(act: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """act [batch, pos, d] -> [batch, d] at pos (or the mean over 1..length-1 where pos is -1)."""
    rows = torch.arange(act.shape[0])
    picked = act[rows, pos.clamp(min=0)]  # [batch, d]
    mean_rows = pos < 0
    if mean_rows.any():
        idx = torch.arange(act.shape[1])
        mask = (idx[None, :] >= 1) & (idx[None, :] < lengths[:, None])  # [batch, pos]
        mask[:, 0] |= lengths <= 1  # a text of BOS alone: its only vector
        mean = (act * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # [batch, d]
        picked = torch.where(mean_rows[:, None], mean, picked)
    return picked


def _depth(lm: HookedLM, name: str) -> int:
    """The block a hook point belongs to: -1 for the embeddings, n_layers for the final norm."""
    layer = layer_of(name)
    if layer is not None:
        return layer
    return lm.cfg.n_layers if name.startswith("ln_final") else -1


def collect_activations(lm: HookedLM, texts: Sequence[str], hook_names: Sequence[str],
                        position: str = "last", spans: Sequence[tuple[int, int]] | None = None,
                        token_budget: int | None = None, bf16: bool = True) -> np.ndarray:
    """float32 [layer, batch, d] at each hook point, read at `position` ("last", "marked", "mean").

    Texts longer than the context window are cut to it. All texts go through in one batched
    forward pass, split into chunks only past token_budget padded tokens (default: what keeps the
    MLP's hidden layer within FLOAT_BUDGET floats; 65,536 tokens for the bundled model). Two
    shortcuts, both exact for a causal model: tokens after the last position read are never fed
    in, and the pass ends after the block of the deepest hook point (run_with_cache's
    stop_at_layer; when that is the last block, only one position is unembedded). bf16: matrix
    products in bfloat16 (several times faster on CPUs with AMX; about 3 significant digits,
    plenty for a probe).
    """
    if not texts:
        raise ProbeDataError("There are no texts to probe.")
    token_budget = token_budget or max(256, FLOAT_BUDGET // lm.cfg.d_mlp)
    tokens, lengths = lm.tokenize_batch(texts)  # [batch, pos], [batch]; rows cut to n_ctx
    pos = torch.as_tensor(positions_for(lm, texts, position, lengths.numpy(), spans))
    need = torch.where(pos >= 0, pos + 1, lengths)  # [batch] tokens each text needs
    order = torch.argsort(need, descending=True)  # similar lengths share a chunk: less padding
    stop = max(_depth(lm, n) for n in hook_names) + 1  # the first block not needed
    out: dict[str, list[torch.Tensor]] = {n: [] for n in hook_names}
    start = 0
    while start < len(texts):
        width = int(need[order[start]])
        stop_row = min(len(texts), start + max(1, token_budget // width))
        rows = order[start:stop_row]
        chunk_pos, chunk_len = pos[rows], need[rows]

        def keep(act, hook, chunk_pos=chunk_pos, chunk_len=chunk_len):
            out[hook.name].append(_reduce(act, chunk_pos, chunk_len).float())

        # The hooks keep only the vectors read (not [batch, pos, d] per hook point), so the cache
        # of run_with_cache records nothing: it is here to end the pass early.
        with lm.hooks([(n, keep) for n in hook_names]), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if stop < lm.cfg.n_layers:
                lm.run_with_cache(tokens[rows, :width], names=[], stop_at_layer=stop)
            else:  # the last block is needed; unembed one position, not all of them
                lm(tokens[rows, :width], logits_to_keep=1)
        start = stop_row
    inverse = torch.argsort(order)
    return np.stack([torch.cat(out[n])[inverse].numpy() for n in hook_names])
