"""Attention: who attends to whom (patterns), what kind of head made a pattern (head scores), and
what a head moves and prefers, read from its weights (the OV and QK circuits); `verdicts` decides
what may be said about those results.
"""
