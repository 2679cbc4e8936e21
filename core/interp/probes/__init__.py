"""Linear probes: what each layer lets a linear classifier read (with controls that catch
memorising), and a causal check of whether the model uses the probe's direction.
"""
