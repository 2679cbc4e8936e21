"""Sparse autoencoders: rewrite an activation as a sparse sum of learned directions, train them on a
model's activations, and match the features found against the world's known attributes.
"""
