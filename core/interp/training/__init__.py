"""Training a small transformer live: tasks with ground truth, models built as transformers models,
a background training loop that logs head scores, in-context learning and phase changes as it goes.
"""
