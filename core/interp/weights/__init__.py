"""What the weights hold before any input: each head's OV and QK circuits by their singular vectors,
how heads of different layers compose (Q-, K-, V-composition), and the direct path W_E @ W_U.
"""
