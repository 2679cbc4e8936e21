"""Steering vectors: add a direction to the residual stream while the model writes (CAA, ActAdd,
handed-over probe or SAE directions), and measure what it changes against a random control.
"""
