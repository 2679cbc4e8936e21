"""Residual stream: every layer reads the running sum of what came before and adds its own write.
Read it with the logit lens and the tuned lens, split the final logits into per-component parts
(direct logit attribution), and measure the writes themselves (stream anatomy).
"""
