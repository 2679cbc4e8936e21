"""The model as a graph of components and edges, the object circuit discovery prunes.

Every component writes into the residual stream and reads from it, so the stream is a sum of
everything written before: the embeddings, every earlier head, every earlier MLP. An edge is one
upstream component's contribution as read by one downstream input:

    senders   embed, head L.H (its output z @ W_O), MLP L
    receivers head L.H through its query, key or value; MLP L; the logits (the final stream)

A head of layer L receives from the embeddings and every head and MLP of layers < L; an MLP of layer
L also from the heads of its own layer (unless attention and MLP run in parallel, as in Pythia);
the logits from everything. On the bundled model (4 layers x 4 heads) that is 479 edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from core.interp.patching.node_inputs import DOORS


@dataclass(frozen=True)
class Graph:
    n_layers: int
    n_heads: int
    parallel: bool = False  # attention and MLP read the same stream (no head -> same-layer MLP edge)

    # -- senders: 0 = embed, then per layer its heads and its MLP ---------------------------------
    @property
    def n_senders(self) -> int:
        return 1 + self.n_layers * (self.n_heads + 1)

    def head_sender(self, layer: int, head: int) -> int:
        return 1 + layer * (self.n_heads + 1) + head

    def mlp_sender(self, layer: int) -> int:
        return 1 + layer * (self.n_heads + 1) + self.n_heads

    @cached_property
    def sender_names(self) -> tuple[str, ...]:
        names = ["embed"]
        for layer in range(self.n_layers):
            names += [f"{layer}.{h}" for h in range(self.n_heads)] + [f"MLP {layer}"]
        return tuple(names)

    @cached_property
    def sender_layer(self) -> np.ndarray:
        """Layer of each sender (-1 for embed)."""
        return np.array([-1] + [layer for layer in range(self.n_layers) for _ in range(self.n_heads + 1)])

    def sender_head(self, i: int) -> tuple[int, int] | None:
        """(layer, head) if sender i is a head, else None."""
        if i == 0:
            return None
        layer, j = divmod(i - 1, self.n_heads + 1)
        return (layer, j) if j < self.n_heads else None

    # -- receivers: per layer its heads x (q, k, v), then its MLP; last the logits ----------------
    @property
    def n_receivers(self) -> int:
        return self.n_layers * (3 * self.n_heads + 1) + 1

    def head_receiver(self, layer: int, head: int, door: str) -> int:
        return layer * (3 * self.n_heads + 1) + 3 * head + DOORS.index(door)

    def mlp_receiver(self, layer: int) -> int:
        return layer * (3 * self.n_heads + 1) + 3 * self.n_heads

    @property
    def logits(self) -> int:
        return self.n_receivers - 1

    @cached_property
    def receiver_names(self) -> tuple[str, ...]:
        names = []
        for layer in range(self.n_layers):
            names += [f"{layer}.{h} {d}" for h in range(self.n_heads) for d in DOORS] + [f"MLP {layer}"]
        return (*names, "logits")

    def receiver_node(self, r: int) -> str:
        """The component a receiver belongs to: "2.1 q" -> "2.1", "MLP 0", "logits"."""
        name = self.receiver_names[r]
        return name.rsplit(" ", 1)[0] if name.endswith((" q", " k", " v")) else name

    def receiver_sender(self, r: int) -> int | None:
        """The sender index of the component a receiver belongs to (None for the logits)."""
        node = self.receiver_node(r)
        return None if node == "logits" else self.sender_names.index(node)

    @cached_property
    def receiver_layer(self) -> np.ndarray:
        per_layer = 3 * self.n_heads + 1
        return np.array([r // per_layer for r in range(self.n_receivers - 1)] + [self.n_layers])

    # -- edges -----------------------------------------------------------------------------------
    @cached_property
    def valid(self) -> np.ndarray:
        """Bool [receiver, sender]: True where the sender writes before the receiver reads."""
        out = np.zeros((self.n_receivers, self.n_senders), dtype=bool)
        for r in range(self.n_receivers):
            layer = self.receiver_layer[r]
            is_mlp = self.receiver_names[r].startswith("MLP")
            for s in range(self.n_senders):
                sl = self.sender_layer[s]
                if s == 0 or sl < layer:
                    out[r, s] = True
                elif is_mlp and sl == layer and not self.parallel and self.sender_head(s) is not None:
                    out[r, s] = True
        return out

    @property
    def n_edges(self) -> int:
        return int(self.valid.sum())

    @cached_property
    def edges(self) -> np.ndarray:
        """[n_edges, 2] (receiver, sender) pairs in a fixed order."""
        return np.argwhere(self.valid)

    def edge_name(self, receiver: int, sender: int) -> str:
        return f"{self.sender_names[sender]} -> {self.receiver_names[receiver]}"

    def heads(self) -> list[tuple[int, int]]:
        return [(layer, h) for layer in range(self.n_layers) for h in range(self.n_heads)]


def graph_of(lm) -> Graph:
    return Graph(lm.cfg.n_layers, lm.cfg.n_heads, lm.cfg.parallel_attn_mlp)
