"""The LoRA & forgetting page: controls, training (compute), adapter files, frames, charts and views.
"""
