"""The data an SAE learns from: one activation vector per token, read at a hook point.

We run the model over a generated corpus and keep the activation at one hook (say the residual
stream after block 1) for every real token. Two kinds of position are left out:
- the first token (BOS): its residual stream is an outlier, many times longer than the others, and
  would dominate the reconstruction loss while telling us nothing about the text;
- padding after the end of a shorter document in a batch.

Each kept activation remembers where it came from (document and position), so that later a feature
can be shown in context: "fires on ' red' in 'Mary found a red ball'".

For tests and benchmarks, `synthetic_activations` builds data whose features we know: random unit
directions, each active on a small random fraction of samples with a random positive strength. A
good SAE trained on it should find those exact directions again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from core.models.hook_names import layer_of


@dataclass(frozen=True)
class ActivationSet:
    """acts [n, d_in] from tokens [n_docs, pos]; row r came from tokens[doc[r], pos[r]]."""

    acts: torch.Tensor  # [n, d_in] float32
    tokens: torch.Tensor  # [n_docs, pos] right-padded token ids
    lengths: torch.Tensor  # [n_docs] real tokens per document (BOS included)
    doc: torch.Tensor  # [n] long
    pos: torch.Tensor  # [n] long
    hook_name: str
    model_spec: str

    @property
    def token_ids(self) -> torch.Tensor:
        """The token each activation was read at, [n]."""
        return self.tokens[self.doc, self.pos]

    def __len__(self) -> int:
        return self.acts.shape[0]


def collect_activations(lm, texts: Sequence[str], hook_name: str, *, batch_size: int = 64,
                        max_tokens: int | None = None, progress=None) -> ActivationSet:
    """Run lm over texts and keep hook_name's activation at every real token except BOS.

    max_tokens caps the rows kept (documents are whole, except the last one, which may be cut:
    its length then counts only the positions kept). progress: an optional
    callable(docs_done, n_docs). Runs on the thread count torch is set to (the app sets it once).

    Documents are batched by length (shortest first), so a batch pads to about its own length
    instead of the longest document's; the rows still come out in document order.
    """
    if not texts:
        raise ValueError("No texts to collect activations from.")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")
    tokens, lengths = lm.tokenize_batch(list(texts))  # [n_docs, pos], [n_docs]
    tokens, lengths = tokens[:, : lm.cfg.n_ctx], lengths.clamp(max=lm.cfg.n_ctx)
    n_docs = len(texts) if max_tokens is None else docs_within(lengths, max_tokens)
    tokens, lengths = tokens[:n_docs], lengths[:n_docs]
    rows = (lengths - 1).clamp(min=0)  # [n_docs] rows each document gives (BOS left out)
    first = torch.cat([torch.zeros(1, dtype=torch.long), rows.cumsum(0)])  # [n_docs + 1] row offsets
    if int(first[-1]) == 0:
        raise ValueError("The texts have no tokens after BOS to collect activations from.")
    stop = stop_layer(hook_name, lm.cfg.n_layers)
    acts = None
    done = 0
    for batch_docs in torch.argsort(lengths, stable=True).split(batch_size):
        width = int(lengths[batch_docs].max())
        batch = tokens[batch_docs, :width]  # [batch, pos]
        act = _read_hook(lm, batch, hook_name, stop)  # [batch, pos, d_in]
        if act.ndim != 3 or act.shape[:2] != batch.shape:
            raise ValueError(f"{hook_name} is not a [batch, pos, d] activation; pick another hook.")
        if acts is None:
            acts = torch.empty(int(first[-1]), act.shape[2])  # [n, d_in]
        pos = torch.arange(width)
        keep = (pos[None, :] >= 1) & (pos[None, :] < lengths[batch_docs, None])  # [batch, pos]
        d, p = keep.nonzero(as_tuple=True)
        acts[first[batch_docs[d]] + p - 1] = act[d, p]  # each row to its place in document order
        done += len(batch_docs)
        if progress is not None:
            progress(done, n_docs)
    doc = torch.repeat_interleave(torch.arange(n_docs), rows)  # [n]
    pos = torch.arange(len(doc)) - first[doc] + 1  # [n] position in its document (1 = after BOS)
    if max_tokens is not None and len(doc) > max_tokens:
        acts, doc, pos = acts[:max_tokens], doc[:max_tokens], pos[:max_tokens]
    n_docs = int(doc[-1]) + 1  # rows are in document order
    lengths = lengths[:n_docs].clone()
    lengths[-1] = int(pos[-1]) + 1  # the last document may have been cut by max_tokens
    return ActivationSet(acts.contiguous(), tokens[:n_docs], lengths, doc, pos, hook_name, lm.spec)


def docs_within(lengths: torch.Tensor, max_tokens: int) -> int:
    """How many leading documents (lengths [n_docs], BOS included) collect_activations reads to
    keep max_tokens rows: the last of them may be cut; all of them if they have fewer rows."""
    rows = (lengths - 1).clamp(min=0).cumsum(0)  # [n_docs] rows kept up to each document
    return min(len(lengths), int(torch.searchsorted(rows, max_tokens)) + 1)


def stop_layer(hook_name: str, n_layers: int) -> int | None:
    """The block before which a forward pass can end once hook_name has been read: the hook's
    layer + 1, 0 for the embeddings, None (run to the end) for the last block and the final norm."""
    layer = layer_of(hook_name)
    if layer is None:
        return 0 if hook_name in ("hook_embed", "hook_pos_embed") else None
    return layer + 1 if layer + 1 < n_layers else None


def _read_hook(lm, tokens: torch.Tensor, hook_name: str, stop: int | None) -> torch.Tensor:
    """The activation at hook_name, without running the blocks after it."""
    _, cache = lm.run_with_cache(tokens, names=[hook_name], stop_at_layer=stop)
    if hook_name not in cache:
        raise ValueError(f"The forward pass never reached {hook_name}.")
    return cache[hook_name].float()


def split(data: ActivationSet, fraction: float) -> tuple[ActivationSet, ActivationSet]:
    """(first, second): whole documents, about `fraction` of the rows in the first part."""
    cut_doc = int(data.doc[min(len(data) - 1, int(fraction * len(data)))])
    first = data.doc < cut_doc
    second = ~first

    def part(mask: torch.Tensor, doc_offset: int, docs: slice) -> ActivationSet:
        return ActivationSet(data.acts[mask], data.tokens[docs], data.lengths[docs],
                             data.doc[mask] - doc_offset, data.pos[mask], data.hook_name,
                             data.model_spec)

    return part(first, 0, slice(0, cut_doc)), part(second, cut_doc, slice(cut_doc, None))


@dataclass(frozen=True)
class SyntheticData:
    """acts [n, d_in] = sum of a few true features per row (+ noise); features [n_features, d_in]."""

    acts: torch.Tensor
    features: torch.Tensor


def synthetic_activations(n: int, d_in: int, n_features: int, *, p_active: float = 0.02,
                          noise: float = 0.0, seed: int = 0, chunk: int = 65_536) -> SyntheticData:
    """n samples built from n_features random unit directions, each on with probability p_active
    and strength uniform in [0.5, 1.5] when on."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n_features, d_in, generator=gen)  # [n_features, d_in]
    features /= features.norm(dim=1, keepdim=True)
    acts = torch.empty(n, d_in)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        on = torch.rand(m, n_features, generator=gen) < p_active
        codes = on * (0.5 + torch.rand(m, n_features, generator=gen))  # [chunk, n_features]
        acts[start:start + m] = codes @ features
    if noise:
        acts += noise * torch.randn(n, d_in, generator=gen)
    return SyntheticData(acts, features)
