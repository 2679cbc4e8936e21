"""The SAE's training loss and its gradients, written out by hand.

For a batch x [B, d_in] the loss is

    loss = mean over tokens of |x - x_hat|^2  +  l1 x mean over tokens of sum_i f_i |W_dec[i]|

(l1 = 0 for TopK, whose sparsity is in the activation function). Autograd would compute its
gradients too, but knowing them is the point, and writing them down lets the big matrix products
run in bfloat16 on a CPU where that measured faster (core.models.dtype; the weights stay float32).
With err = x_hat - x and n_i = |W_dec[i]|, the chain rule gives five products:

    dL/dx_hat  = 2 err / B                                       [B, d_in]
    dL/df      = dL/dx_hat W_dec^T + l1 n / B                     [B, d_sae]
    dL/dpre    = dL/df where f > 0, else 0                        [B, d_sae]
    dL/dW_dec[i] = f[:, i]^T dL/dx_hat + (l1 / B) (sum of f[:, i]) W_dec[i] / n_i
    dL/dW_enc  = (x - b_dec)^T dL/dpre,   dL/db_enc = sum over the batch of dL/dpre
    dL/db_dec  = sum of dL/dx_hat - dL/db_enc W_enc^T    (b_dec is subtracted before encoding)

Two of the sums over the batch ride along in the products: with a column of ones appended to
x - b_dec, the product for dL/dW_enc also yields dL/db_enc in its last row, and with ones appended
to dL/dx_hat, the product for dL/dW_dec also yields each feature's sum of f. One pass over the big
[B, d_sae] matrices is saved each time.

`training_loss` computes the same loss through autograd, the reference the tests hold these to.
"""

from __future__ import annotations

import torch

from core.interp.sae.model import SAE, sparsify


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 - sum |x - x_hat|^2 / sum |x - mean(x)|^2 over a batch [n, d]."""
    residual = (x - x_hat).pow(2).sum()
    total = (x - x.mean(0)).pow(2).sum()
    return float(1 - residual / total)


@torch.no_grad()
def manual_gradients(sae: SAE, x: torch.Tensor, l1: float, *, bf16: bool = False,
                     full_stats: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Gradients of the training loss (module docstring) for a batch x [batch, d_in]; the products
    in bfloat16 when bf16, else float32.

    Stats: which features fired, and with full_stats the loss, MSE, explained variance and L0 of
    the batch. (tests/unit/test_sae_train.py checks the gradients against autograd.)
    """
    dt = torch.bfloat16 if bf16 else torch.float32
    B = x.shape[0]
    norms = sae.W_dec.norm(dim=1)  # [d_sae]
    W_enc, W_dec = sae.W_enc.to(dt), sae.W_dec.to(dt)  # [d_in, d_sae], [d_sae, d_in]
    ones = torch.ones(B, 1, dtype=dt)
    xc1 = torch.cat([(x - sae.b_dec).to(dt), ones], dim=1)  # [batch, d_in + 1]: x - b_dec, then 1
    pre = torch.addmm(sae.b_enc.to(dt), xc1[:, :-1], W_enc)  # [batch, d_sae]
    if sae.cfg.architecture == "relu":
        f = pre.relu_()  # [batch, d_sae], in place: pre is not needed again
    else:
        f = sparsify(pre, sae.cfg, norms.to(dt))
    x_hat = (f @ W_dec).float() + sae.b_dec  # [batch, d_in]
    err = x_hat - x
    g_xhat = (2.0 / B) * err  # [batch, d_in]
    g_xhat1 = torch.cat([g_xhat.to(dt), ones], dim=1)  # [batch, d_in + 1]: dL/dx_hat, then 1
    g_f = torch.addmm((l1 / B * norms).to(dt), g_xhat1[:, :-1], W_dec.T)  # [batch, d_sae]
    g_pre = torch.ops.aten.threshold_backward(g_f, f, 0)  # zero where f == 0
    enc = (xc1.T @ g_pre).float()  # [d_in + 1, d_sae]: dL/dW_enc, and dL/db_enc in the last row
    dec = (f.T @ g_xhat1).float()  # [d_sae, d_in + 1]: dL/dW_dec (MSE part), and sum of f
    g_b_enc, f_sum = enc[-1], dec[:, -1]  # [d_sae], [d_sae]
    g_W_dec = dec[:, :-1].contiguous()  # a column slice is strided; the optimiser wants dense grads
    if l1:
        g_W_dec = g_W_dec + (l1 / B) * (f_sum / norms.clamp(min=1e-8))[:, None] * sae.W_dec
    grads = {
        "W_enc": enc[:-1],  # [d_in, d_sae]
        "b_enc": g_b_enc,
        "W_dec": g_W_dec,
        "b_dec": g_xhat.sum(0) - g_b_enc @ sae.W_enc.T,  # [d_in]
    }
    stats = {"fired": f_sum > 0}  # f >= 0, so a feature fired iff its column sum is positive
    if full_stats:
        mse = float(err.pow(2).sum(1).mean())
        stats.update(loss=mse + l1 * float(f_sum @ norms) / B, mse=mse, ev=explained_variance(x, x_hat),
                     l0=float(torch.count_nonzero(f)) / B)
    return grads, stats


def training_loss(sae: SAE, x: torch.Tensor, l1: float) -> torch.Tensor:
    """The same loss through autograd: the reference for manual_gradients."""
    f = sae.encode(x)
    mse = (sae.decode(f) - x).pow(2).sum(1).mean()
    return mse + l1 * (f * sae.W_dec.norm(dim=1)).sum(1).mean()
