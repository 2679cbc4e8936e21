"""Activation patching: run the model on a corrupted input, copy one activation in from the clean run,
and measure how much of the clean behaviour returns. Circuits: the few components and edges that carry it.
"""
