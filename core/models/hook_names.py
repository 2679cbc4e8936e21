"""Hook-point names, exactly as TransformerLens spells them, built in one place.

A hook point is a named activation inside the forward pass that you can read (cache) or overwrite
(hook). Pages never paste names together; they call `act_name("resid_pre", 3)`.

Shapes (batch, pos, ... as in the DESIGN conventions):
    hook_embed, hook_pos_embed                [batch, pos, d_model]
    blocks.L.hook_resid_pre / _mid / _post   [batch, pos, d_model]
    blocks.L.hook_attn_out, hook_mlp_out     [batch, pos, d_model]
    blocks.L.attn.hook_q / _k / _v / _z      [batch, pos, head, d_head]   (q, k after rotary)
    blocks.L.attn.hook_attn_scores           [batch, head, q_pos, k_pos]  (before softmax)
    blocks.L.attn.hook_pattern               [batch, head, q_pos, k_pos]  (after softmax)
    blocks.L.mlp.hook_pre / _post            [batch, pos, d_mlp]
    ln_final.hook_normalized                 [batch, pos, d_model]
"""

from __future__ import annotations

GLOBAL_SITES = ("embed", "pos_embed", "normalized")
BLOCK_SITES = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
ATTN_SITES = ("q", "k", "v", "z", "attn_scores", "pattern")
MLP_SITES = ("pre", "post")
ALL_SITES = GLOBAL_SITES + BLOCK_SITES + ATTN_SITES + MLP_SITES


def act_name(site: str, layer: int | None = None) -> str:
    """The full hook name for a site, for example act_name("pattern", 2) -> "blocks.2.attn.hook_pattern"."""
    if site in ("embed", "pos_embed"):
        return f"hook_{site}"
    if site == "normalized":
        return "ln_final.hook_normalized"
    if site not in ALL_SITES:
        raise ValueError(f"Unknown hook site {site!r}; known sites: {', '.join(ALL_SITES)}")
    if layer is None:
        raise ValueError(f"Hook site {site!r} needs a layer index")
    if site in ATTN_SITES:
        return f"blocks.{layer}.attn.hook_{site}"
    if site in MLP_SITES:
        return f"blocks.{layer}.mlp.hook_{site}"
    return f"blocks.{layer}.hook_{site}"


def all_hook_names(n_layers: int, *, has_pos_embed: bool, has_resid_mid: bool) -> list[str]:
    """Every hook name a model with this shape offers, in forward-pass order."""
    names = ["hook_embed"] + (["hook_pos_embed"] if has_pos_embed else [])
    for layer in range(n_layers):
        names.append(act_name("resid_pre", layer))
        names += [act_name(s, layer) for s in ("q", "k", "v", "attn_scores", "pattern", "z")]
        names.append(act_name("attn_out", layer))
        if has_resid_mid:
            names.append(act_name("resid_mid", layer))
        names += [act_name("pre", layer), act_name("post", layer), act_name("mlp_out", layer)]
        names.append(act_name("resid_post", layer))
    names.append("ln_final.hook_normalized")
    return names


def layer_of(name: str) -> int | None:
    """The layer index in a hook name, or None for embed / final-norm hooks."""
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "blocks" else None


# -- one meaning of "layer" everywhere ------------------------------------------------------------
# The residual stream can be read at n_layers + 1 points: after the embeddings, and after each block.
# "Layer L" always means the stream after block L (blocks.L.hook_resid_post); EMBEDDINGS (-1) means the
# stream before block 0 (blocks.0.hook_resid_pre, the token + position embeddings). Writing to the
# stream "at layer L" adds to blocks.L.hook_resid_post, which is exactly what block L + 1 reads.
EMBEDDINGS = -1


def stream_hook(layer: int) -> str:
    """The hook name where the stream is read or written "at layer L" (EMBEDDINGS: before block 0)."""
    if layer == EMBEDDINGS:
        return act_name("resid_pre", 0)
    if layer < 0:
        raise ValueError(f"Stream layer must be {EMBEDDINGS} (embeddings) or a block index, not {layer}")
    return act_name("resid_post", layer)


def stream_layers(n_layers: int) -> list[int]:
    """Every point where the stream can be read: [EMBEDDINGS, 0, 1, ..., n_layers - 1]."""
    return [EMBEDDINGS, *range(n_layers)]


def stream_label(layer: int) -> str:
    """Plain words for a stream point: "embeddings (before layer 0)" or "after layer 2"."""
    return "embeddings (before layer 0)" if layer == EMBEDDINGS else f"after layer {layer}"


def layer_words(layer: int) -> str:
    """A stream point in a sentence: "the embeddings" or "layer 2"."""
    return "the embeddings" if layer == EMBEDDINGS else f"layer {layer}"


def short_label(layer: int) -> str:
    """A stream point on an axis or a slider: "embed" or "2"."""
    return "embed" if layer == EMBEDDINGS else str(layer)


def stream_layer_of(name: str) -> int | None:
    """The stream point a residual hook reads, in the lab's convention: resid_post L -> L,
    resid_pre L -> L - 1 (the same tensor as the stream after layer L - 1), else None."""
    layer = layer_of(name)
    if layer is None:
        return None
    if name.endswith("hook_resid_post"):
        return layer
    if name.endswith("hook_resid_pre"):
        return layer - 1 if layer > 0 else EMBEDDINGS
    return None


_SITE_WORDS = {
    "resid_mid": "the stream between attention and MLP of layer {L}",
    "attn_out": "what the attention of layer {L} writes",
    "mlp_out": "what the MLP of layer {L} writes",
    "q": "queries of layer {L}", "k": "keys of layer {L}", "v": "values of layer {L}",
    "z": "head outputs of layer {L} (before W_O)",
    "attn_scores": "attention scores of layer {L} (before softmax)",
    "pattern": "attention pattern of layer {L}",
    "pre": "MLP neurons of layer {L}, before the activation function",
    "post": "MLP neurons of layer {L}, after the activation function",
}


def hook_label(name: str) -> str:
    """Plain words for any hook name, so no page shows a bare hook name without them."""
    stream = stream_layer_of(name)
    if stream == EMBEDDINGS:
        return "the residual stream before layer 0 (the embeddings)"
    if stream is not None:
        return f"residual stream {stream_label(stream)}"
    if name == "hook_embed":
        return "token embeddings"
    if name == "hook_pos_embed":
        return "position embeddings"
    if name == "ln_final.hook_normalized":
        return "the stream after the final norm"
    layer = layer_of(name)
    site = name.rsplit("hook_", 1)[-1]
    if layer is not None and site in _SITE_WORDS:
        return _SITE_WORDS[site].format(L=layer)
    return name
