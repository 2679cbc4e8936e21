"""The Sparse autoencoders page: controls, training (compute), SAE files, the feature dashboard,
charts.
"""
