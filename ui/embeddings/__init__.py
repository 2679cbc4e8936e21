"""The Embeddings & positions page: cached computations (compute), charts and views.
"""
