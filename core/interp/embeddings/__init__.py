"""Embeddings and positions: the geometry of the token embedding matrix (neighbours, analogies,
projections) and how a model tells positions apart (learned, sinusoidal or rotary).
"""
