"""The Steering vectors page: controls, cached computations (compute), charts and views.
"""
