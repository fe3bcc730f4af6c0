"""Activations and softmax: one MIL activation op where Core ML has it.

Several of these are ops torch decomposes (silu, hardsigmoid, hardswish, softplus, mish, prelu); they
are kept whole because one native MIL op is faster and, for softplus and mish, more accurate than
the exp/log1p chain torch would produce.
"""

from __future__ import annotations

import numpy as np
import torch

from ..registry import lowering
from .elementwise import binary, clamp_between, numeric_dtype, to_float
from .unary import float_unary

aten = torch.ops.aten




for _op, _mil_op in ((aten.sigmoid.default, "sigmoid"), (aten.silu.default, "silu")):
    lowering(_op)(float_unary(_op.__name__.split(".")[0], _mil_op))


@lowering(aten.relu.default)
def relu(ctx, self):
    """relu(Tensor self) -> Tensor"""
    if not self.dtype.is_float:
        return binary(ctx, "maximum", self, 0, numeric_dtype(ctx, self))  # torch keeps an int dtype
    return ctx.b.op("relu", x=self)


@lowering(aten.gelu.default)
def gelu(ctx, self, approximate="none"):
    """gelu(Tensor self, *, str approximate='none') -> Tensor"""
    modes = {"none": "EXACT", "tanh": "TANH_APPROXIMATION"}
    if approximate not in modes:
        raise ctx.unsupported(f"gelu approximate={approximate!r}")
    return ctx.b.op("gelu", x=to_float(ctx, self), mode=modes[approximate])


@lowering(aten.hardtanh.default)
def hardtanh(ctx, self, min_val=-1, max_val=1):
    """hardtanh(Tensor self, Scalar min_val=-1, Scalar max_val=1) -> Tensor"""
    return clamp_between(ctx, self, min_val, max_val)


@lowering(aten.hardsigmoid.default)
def hardsigmoid(ctx, self):
    """hardsigmoid(Tensor self) -> Tensor"""
    return ctx.b.op("sigmoid_hard", x=to_float(ctx, self), alpha=1.0 / 6, beta=0.5)


@lowering(aten.hardswish.default)
def hardswish(ctx, self):
    """hardswish(Tensor self) -> Tensor"""
    x = to_float(ctx, self)
    return ctx.b.op("mul", x=x, y=ctx.b.op("sigmoid_hard", x=x, alpha=1.0 / 6, beta=0.5))


@lowering(aten.leaky_relu.default)
def leaky_relu(ctx, self, negative_slope=0.01):
    """leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor"""
    return ctx.b.op("leaky_relu", x=to_float(ctx, self), alpha=float(negative_slope))


@lowering(aten.elu.default)
def elu(ctx, self, alpha=1, scale=1, input_scale=1):
    """elu(Tensor self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1) -> Tensor"""
    x = to_float(ctx, self)
    if input_scale == 1:
        y = ctx.b.op("elu", x=x, alpha=float(alpha))
    else:
        # torch scales the input of the exponential branch only: x > 0 ? x : alpha * (exp(x * s) - 1).
        negative = binary(ctx, "mul", binary(ctx, "sub", ctx.b.op("exp", x=binary(ctx, "mul", x, input_scale)),
                                             1.0), alpha)
        y = ctx.b.op("select", cond=binary(ctx, "greater", x, 0.0), a=x, b=negative)
    return y if scale == 1 else binary(ctx, "mul", y, scale)


@lowering(aten.softplus.default)
def softplus(ctx, self, beta=1, threshold=20):
    """softplus(Tensor self, Scalar beta=1, Scalar threshold=20) -> Tensor"""
    x = to_float(ctx, self)
    scaled = x if beta == 1 else binary(ctx, "mul", x, beta)
    smooth = ctx.b.op("softplus", x=scaled)
    if beta != 1:
        smooth = binary(ctx, "real_div", smooth, beta)
    if threshold >= 20 and beta > 0:
        # torch returns x where beta * x > threshold; the exact softplus differs there by at most
        # log1p(exp(-20)) / beta, below fp32 resolution relative to x.
        return smooth
    return ctx.b.op("select", cond=binary(ctx, "greater", scaled, threshold), a=x, b=smooth)


@lowering(aten.mish.default)
def mish(ctx, self):
    """mish(Tensor self) -> Tensor"""
    x = to_float(ctx, self)
    return ctx.b.op("mul", x=x, y=ctx.b.op("tanh", x=ctx.b.op("softplus", x=x)))


# -- prelu -----------------------------------------------------------------------------------------

@lowering(aten.prelu.default)
def prelu(ctx, self, weight):
    """prelu(Tensor self, Tensor weight) -> Tensor"""
    x = to_float(ctx, self)
    if weight.is_const:
        slopes = np.asarray(weight.value, dtype=np.float32).reshape(-1)
        if slopes.size == 1:
            return ctx.b.op("leaky_relu", x=x, alpha=float(slopes[0]))
        # Core ML's prelu takes rank 4, or rank 3 and 5 with one shared slope (handled above).
        if x.rank == 4 and x.shape[1] == slopes.size:
            return ctx.b.op("prelu", x=x, alpha=ctx.const(slopes, x.dtype))
    if x.rank >= 2 and weight.rank == 1:
        # One slope per channel (axis 1): shape the weight to broadcast along the trailing axes.
        per_channel = [-1] + [1] * (x.rank - 2)
        weight = ctx.const(slopes.reshape(per_channel), x.dtype) if weight.is_const \
            else ctx.b.op("reshape", x=weight, shape=per_channel)
    return _prelu_select(ctx, x, weight)


@lowering(aten._prelu_kernel.default)
def prelu_kernel(ctx, self, weight):
    """_prelu_kernel(Tensor self, Tensor weight) -> Tensor"""
    return _prelu_select(ctx, to_float(ctx, self), weight)


def _prelu_select(ctx, x, weight):
    """x > 0 ? x : weight * x, with the weight already shaped to broadcast against x."""
    scaled = binary(ctx, "mul", x, weight)
    return ctx.b.op("select", cond=binary(ctx, "greater", x, 0.0), a=x, b=scaled)


# -- softmax ---------------------------------------------------------------------------------------

def _check_softmax(ctx, x, half_to_float):
    if half_to_float:
        raise ctx.unsupported("softmax with half_to_float (a CUDA-only variant)")
    if x.rank == 0:
        raise ctx.unsupported("softmax of a 0-d tensor")


@lowering(aten._softmax.default)
def softmax(ctx, self, dim, half_to_float):
    """_softmax(Tensor self, int dim, bool half_to_float) -> Tensor"""
    _check_softmax(ctx, self, half_to_float)
    return ctx.b.op("softmax", x=to_float(ctx, self), axis=dim)


@lowering(aten._log_softmax.default)
def log_softmax(ctx, self, dim, half_to_float):
    """_log_softmax(Tensor self, int dim, bool half_to_float) -> Tensor"""
    _check_softmax(ctx, self, half_to_float)
    # x - logsumexp(x): one stable reduction instead of log(softmax(x)), which underflows to -inf.
    x = to_float(ctx, self)
    lse = ctx.b.op("reduce_log_sum_exp", x=x, axes=[dim], keep_dims=True)
    return ctx.b.op("sub", x=x, y=lse)

