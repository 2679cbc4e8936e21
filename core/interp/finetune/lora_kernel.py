"""A faster forward and backward for PEFT's LoRA layers, with the same parameters and the same maths.

PEFT computes a LoRA layer as three products and two element-wise passes over the whole output:

    y = x W + b  +  s * (x A^T) B^T            x [N, d_in], W [d_in, d_out], A [r, d_in], B [d_out, r]

On a small model most of a training step is the cost of those extra passes and of PEFT's Python
per call, not of arithmetic. Here the same layer folds the low-rank update into the weight first:

    W_eff = W + s * A^T B^T         one [d_in, r] x [r, d_out] product: tiny next to x W
    y     = x W_eff + b             one product, as if the layer had no adapter

and autograd is told the gradients directly (`LoraMatmul.backward`), so W's own gradient, a full
[d_in, d_out] product that a frozen W never needs, is never computed:

    dL/dx = g W_eff^T       dL/dB = s * g^T (x A^T)       dL/dA = s * (g B)^T x          g = dL/dy

In float32 the rank-r products run in their transposed form, r rows long (A x^T, B^T g^T and
(A x^T) g, dL/dB returned as a transposed view): the same sums, but the CPU's float32 kernels are slow
on a product only r = 8 columns wide ([512, 512] x [512, 8] took twice as long as
[8, 512] x [512, 512] on 2 threads), and a LoRA step of the bundled model took 4% less time (1 and 2
threads, interleaved). Its bfloat16 kernels are the other way round: there the transposed form made
the step 3% slower (1 and 2 threads), so bfloat16 keeps the r-column form.

Same parameters (PEFT's lora_A / lora_B, so saving, loading and `disable_adapter` behave as before),
same maths; the two differ by float rounding only (tests/unit/test_lora_kernel.py checks outputs and
gradients against PEFT's own forward and torch autograd, on GPT-2's Conv1D and on nn.Linear).

Under bfloat16 autocast, W_eff is formed in float32 and rounded once, so a small update is not lost
to bfloat16's 8 bits next to a large W; the products run in bfloat16, as PEFT's would.

Anything this fast path does not cover (adapters switched off or merged, several active adapters,
dropout, DoRA and other variants, mixed-adapter batches) goes through PEFT's own forward.
"""

from __future__ import annotations

import types

import torch
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn
from transformers.pytorch_utils import Conv1D


def rows_form(dtype: torch.dtype) -> bool:
    """Whether the rank-r products run r rows long: yes in float32 (and wider), where this CPU's kernels
    ran that form faster; no in bfloat16, where they ran the r-column form faster (see the module's
    docstring). float16 was not measured and goes with bfloat16."""
    return dtype.itemsize >= 4


class LoraMatmul(torch.autograd.Function):
    """y = x (W + s A^T B^T) + b, with gradients for x, A and B only (W and b are frozen)."""

    @staticmethod
    def forward(ctx, x, W, bias, A, B, scaling: float, dtype: torch.dtype):
        # x [N, d_in], W [d_in, d_out], bias [d_out] or None, A [r, d_in], B [d_out, r]
        if not torch.is_autocast_enabled("cpu"):  # float32 training: no context to enter on every call
            return LoraMatmul._products(ctx, x, W, bias, A, B, scaling, dtype)
        with torch.autocast("cpu", enabled=False):  # each product below runs in the format it names
            return LoraMatmul._products(ctx, x, W, bias, A, B, scaling, dtype)

    @staticmethod
    def _products(ctx, x, W, bias, A, B, scaling: float, dtype: torch.dtype) -> torch.Tensor:
        W_eff = torch.addmm(W, A.t(), B.t(), alpha=scaling).to(dtype)  # float32 sum, rounded once
        x_ = x.to(dtype)
        y = x_ @ W_eff if bias is None else torch.addmm(bias.to(dtype), x_, W_eff)
        ctx.rows = rows_form(dtype)
        if ctx.rows:  # (x A^T)^T [r, N] and B^T [r, d_out]
            ctx.save_for_backward(x_, A.to(dtype) @ x_.t(), W_eff, B.to(dtype).t().contiguous())
        else:  # x A^T [N, r] and B [d_out, r]
            ctx.save_for_backward(x_, x_ @ A.to(dtype).t(), W_eff, B.to(dtype))
        ctx.scaling, ctx.x_dtype = scaling, x.dtype
        return y

    @staticmethod
    def backward(ctx, g):
        x_, h, W_eff, B_ = ctx.saved_tensors
        g = g.to(W_eff.dtype)
        needs_x, _, _, needs_A, needs_B, _, _ = ctx.needs_input_grad
        grad_x = (g @ W_eff.t()).to(ctx.x_dtype) if needs_x else None
        grad_A = grad_B = None
        if ctx.rows:  # h = (x A^T)^T [r, N], B_ = B^T [r, d_out]
            if needs_A:
                grad_A = ((B_ @ g.t()) @ x_).mul_(ctx.scaling)  # (g B)^T x [r, d_in]
            if needs_B:
                grad_B = (h @ g).mul_(ctx.scaling).t()  # g^T (x A^T) [d_out, r], as a transposed view
        else:  # h = x A^T [N, r], B_ = B [d_out, r]
            if needs_A:
                grad_A = ((g @ B_).t() @ x_).mul_(ctx.scaling)
            if needs_B:
                grad_B = (g.t() @ h).mul_(ctx.scaling)
        return grad_x, None, None, grad_A, grad_B, None, None


def _weight_in_out(base: nn.Module) -> torch.Tensor:
    """W as [d_in, d_out]: GPT-2's Conv1D stores it so; nn.Linear stores [d_out, d_in]."""
    return base.weight if isinstance(base, Conv1D) else base.weight.t()


def _fast_path_applies(layer: LoraLinear, x: torch.Tensor, args, kwargs) -> str | None:
    """The active adapter's name when the fast path computes exactly what PEFT would, else None."""
    if args or kwargs or layer.disable_adapters or layer.merged or len(layer.active_adapters) != 1:
        return None
    name = layer.active_adapters[0]
    if (name not in layer.lora_A or name in getattr(layer, "lora_variant", {})
            or not isinstance(layer.lora_dropout[name], nn.Identity)
            or not isinstance(layer.base_layer, (Conv1D, nn.Linear))
            or layer.lora_A[name].bias is not None or layer.lora_B[name].bias is not None
            or x.device.type != "cpu" or layer.base_layer.weight.dtype != torch.float32):
        return None
    return name


def _forward(layer: LoraLinear, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """LoraLinear.forward, through LoraMatmul when it applies (see the module's docstring)."""
    name = _fast_path_applies(layer, x, args, kwargs)
    if name is None:
        return LoraLinear.forward(layer, x, *args, **kwargs)
    base = layer.base_layer
    W, bias = _weight_in_out(base), base.bias
    A, B = layer.lora_A[name].weight, layer.lora_B[name].weight
    scaling = float(layer.scaling[name])
    autocast = torch.is_autocast_enabled("cpu")
    dtype = torch.get_autocast_dtype("cpu") if autocast else x.dtype
    flat = x.reshape(-1, x.shape[-1])
    if torch.is_grad_enabled() and (A.requires_grad or B.requires_grad or x.requires_grad):
        y = LoraMatmul.apply(flat, W, bias, A, B, scaling, dtype)
    else:  # evaluation: one product with the merged weight, nothing kept for a backward pass
        with torch.autocast("cpu", enabled=False):
            W_eff = torch.addmm(W, A.t(), B.t(), alpha=scaling).to(dtype)
            flat = flat.to(dtype)
            y = flat @ W_eff if bias is None else torch.addmm(bias.to(dtype), flat, W_eff)
    return y.view(*x.shape[:-1], y.shape[-1])


def use_fast_lora(model: nn.Module) -> int:
    """Give every PEFT LoRA layer of `model` the fast forward (in place; PEFT's state is unchanged).
    Returns how many layers got it."""
    count = 0
    for module in model.modules():
        if type(module) is LoraLinear:
            module.forward = types.MethodType(_forward, module)
            count += 1
    return count
