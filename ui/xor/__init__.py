"""The XOR page: controls and its cached run, the prediction box and verdict (outcome), the replay
player, the backprop trace, frames and charts.
"""
