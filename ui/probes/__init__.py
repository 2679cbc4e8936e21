"""The Probes page: cached computations (compute), frames, charts and views.
"""
