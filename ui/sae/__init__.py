"""The Sparse autoencoders page: controls (where to read, the training form), compute (cached
activations and reports), training (live, with Stop), files (SAELens zips in and out), frames,
charts, views (the words, from core.interp.sae.verdict) and the feature dashboard.
"""
