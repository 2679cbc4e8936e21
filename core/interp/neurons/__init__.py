"""MLP neurons: what each neuron of a layer fires on (top-activating contexts, histograms), what it
reads and writes (its weights projected to tokens), whether a one-line rule over the bundled world's
labels explains it (explain, simulate, score), and what the model loses without it (knock-out).
"""
