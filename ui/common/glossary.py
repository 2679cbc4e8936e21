"""The glossary: the terms the pages use, in one sentence each, reachable from every page."""

from __future__ import annotations

import streamlit as st

TERMS: dict[str, str] = {
    "Activation patching": "Run the model on one prompt, copy one activation from a run on another prompt "
                           "into it, and measure how much of the behaviour moves: a causal test of what "
                           "that component carries.",
    "Attention head": "One of several parallel attention mechanisms in a layer; each decides where to look "
                      "(its QK circuit) and what to move from there (its OV circuit).",
    "AUROC": "Area under the ROC curve: the chance that a random positive example scores above a random "
             "negative one. 0.5 is guessing, 1.0 separates them perfectly.",
    "CAA": "Contrastive activation addition: the steering vector is the mean difference of the residual "
           "stream between prompts with and without a concept.",
    "Cross-entropy (loss)": "How surprised the model is by the true next token: -log of the probability it "
                            "gave it, in nats. Lower is better; exp(loss) is the perplexity.",
    "Induction head": "A head that finds an earlier occurrence of the current token and copies the token "
                      "that followed it: [A][B] ... [A] -> [B].",
    "KL divergence": "How far one probability distribution is from another (0 when they are equal); used "
                     "here to compare a changed model's next-token predictions with the original's.",
    "L0": "The number of features of a sparse autoencoder that are active (non-zero) on an input, on "
          "average: its sparsity.",
    "Layer L": "In this lab, 'layer L' is the residual stream after block L (blocks.L.hook_resid_post); "
               "'the embeddings' is the stream before block 0.",
    "Logit difference": "The logit of the right answer minus the logit of a wrong one: how strongly the "
                        "model prefers the right token, before the softmax.",
    "LoRA": "Low-rank adaptation: fine-tune a weight matrix W by learning W + B A with thin matrices A and "
            "B of rank r, leaving W itself frozen.",
    "Logit lens": "Read the residual stream at an intermediate layer through the final norm and the "
                  "unembedding, as if the model stopped there.",
    "Perplexity": "exp(cross-entropy): the number of equally likely tokens the model is, on average, "
                  "choosing between. Fluent text has low perplexity.",
    "Probe": "A small classifier (here linear) trained to read a property from a layer's activations. "
             "High accuracy shows the property is readable, not that the model uses it.",
    "Residual stream": "The running sum every layer reads from and writes to: embeddings + every "
                       "attention and MLP output so far.",
    "SAE": "Sparse autoencoder: rewrites an activation as a sparse sum of directions from a larger "
           "learned dictionary, hoping each direction is one interpretable feature.",
    "Selectivity": "A probe's accuracy on the real labels minus its accuracy on a control task with "
                   "random labels: how much the probe reads the layer rather than memorising.",
    "Steering vector": "A direction added to the residual stream while the model writes, to push its "
                       "output toward a concept.",
}


def glossary_popover() -> None:
    """A sidebar popover listing every term (drawn by app.py, so it is on every page)."""
    with st.sidebar.popover("Glossary", icon=":material/menu_book:", width="stretch"):
        for term in sorted(TERMS, key=str.lower):
            st.markdown(f"**{term}.** {TERMS[term]}")
