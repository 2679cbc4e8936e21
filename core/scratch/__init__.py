"""Networks written from scratch in numpy, small enough to follow every number: the XOR MLP with
hand-written backprop (mlp, optim, train, diagnose, trace, views, data)."""
