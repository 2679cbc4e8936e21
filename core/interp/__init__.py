"""One package per technique (attention, embeddings, probes, sae, steering, finetune, ...): its math, its
ground-truth checks and its verdicts. Techniques use core.models and core.world, never core.bundled.
"""
