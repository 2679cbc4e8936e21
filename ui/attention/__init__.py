"""The Attention page: controls, cached computations (compute), frames, charts and views.
"""
