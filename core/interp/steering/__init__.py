"""Steering vectors: add a direction to the residual stream while the model writes (CAA, ActAdd,
handed-over probe or SAE directions), and measure what it changes against a random control.

vectors (build and add), targets (which words are measured where), effect (numbers against the
coefficient), fluency (steered and unsteered text, same seed), verdict (did it steer?).
"""
