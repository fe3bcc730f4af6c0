"""Matrix products: mm, bmm, addmm, addbmm, baddbmm, matmul and linear (MIL `linear` when the weight is a
constant, `matmul` otherwise)."""

from __future__ import annotations

import numpy as np
import torch

from ..registry import lowering
from ._nn_helpers import rank

aten = torch.ops.aten


def _matmul(ctx, x, y, transpose_y=False):
    x, y = ctx.promote(x, y)
    return ctx.b.op("matmul", x=x, y=y, transpose_y=transpose_y)


def _scaled(ctx, x, factor):
    if factor == 1:
        return x
    (x, f) = ctx.promote(x, factor, dtype=x.dtype)
    return ctx.b.op("mul", x=x, y=f)


def _beta_self_plus_alpha_product(ctx, self, product, beta, alpha):
    """beta * self + alpha * product; beta == 0 ignores self entirely (torch does not propagate its
    nan/inf then)."""
    product = _scaled(ctx, product, alpha)
    if beta == 0:
        return product
    self_term = _scaled(ctx, self, beta)
    a, b = ctx.promote(self_term, product)
    return ctx.b.op("add", x=a, y=b)


@lowering(aten.mm.default)
def mm(ctx, self, mat2):
    """mm(Tensor self, Tensor mat2) -> Tensor"""
    return _matmul(ctx, self, mat2)


@lowering(aten.bmm.default)
def bmm(ctx, self, mat2):
    """bmm(Tensor self, Tensor mat2) -> Tensor"""
    return _matmul(ctx, self, mat2)


@lowering(aten.matmul.default)
def matmul(ctx, self, other):
    """matmul(Tensor self, Tensor other) -> Tensor

    Kept whole: MIL matmul broadcasts batch dims like torch. Rank-1 operands are made matrices first
    (coremltools' loader mis-infers a rank-1 `y`), and the added dim squeezed away after."""
    if rank(self) == 0 or rank(other) == 0:
        raise ctx.unsupported("matmul of a 0-d tensor is an error in torch")
    squeeze = []
    if rank(other) == 1:
        other = ctx.b.op("expand_dims", x=other, axes=[-1])
        squeeze.append(-1)
    if rank(self) == 1:
        self = ctx.b.op("expand_dims", x=self, axes=[0])
        squeeze.append(-2)
    out = _matmul(ctx, self, other)
    return ctx.b.op("squeeze", x=out, axes=squeeze) if squeeze else out


@lowering(aten.addmm.default)
def addmm(ctx, self, mat1, mat2, beta=1, alpha=1):
    """addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor"""
    if mat2.is_const and self.is_const and rank(self) == 1 and beta == 1 and alpha == 1 \
            and mat1.dtype.is_float:
        # x @ W.T + b with constants is exactly MIL's fully connected layer.
        weight = ctx.const(np.ascontiguousarray(mat2.value.T), mat2.dtype)
        x, weight, bias = ctx.promote(mat1, weight, self)
        return ctx.b.op("linear", x=x, weight=weight, bias=bias)
    return _beta_self_plus_alpha_product(ctx, self, _matmul(ctx, mat1, mat2), beta, alpha)


@lowering(aten.baddbmm.default)
def baddbmm(ctx, self, batch1, batch2, beta=1, alpha=1):
    """baddbmm(Tensor self, Tensor batch1, Tensor batch2, *, Scalar beta=1, Scalar alpha=1) -> Tensor"""
    return _beta_self_plus_alpha_product(ctx, self, _matmul(ctx, batch1, batch2), beta, alpha)


@lowering(aten.addbmm.default)
def addbmm(ctx, self, batch1, batch2, beta=1, alpha=1):
    """addbmm(Tensor self, Tensor batch1, Tensor batch2, *, Scalar beta=1, Scalar alpha=1) -> Tensor

    The batch of products is summed into one matrix."""
    product = ctx.b.op("reduce_sum", x=_matmul(ctx, batch1, batch2), axes=[0], keep_dims=False)
    return _beta_self_plus_alpha_product(ctx, self, product, beta, alpha)


@lowering(aten.linear.default)
def linear(ctx, input, weight, bias=None):
    """linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor"""
    if rank(weight) == 1:
        raise ctx.unsupported("linear with a 1-d weight (decomposes to matmul + add)")
    if not input.dtype.is_float:
        raise ctx.unsupported("linear on an integer input")
    if weight.is_const and (bias is None or bias.is_const):
        x, w = ctx.promote(input, weight)
        b = None if bias is None else ctx.cast(bias, x.dtype)
        return ctx.b.op("linear", x=x, weight=w, bias=b)
    # A runtime weight (e.g. tied or computed): x @ weight^T, then the bias.
    out = _matmul(ctx, input, weight, transpose_y=True)
    if bias is None:
        return out
    out, bias = ctx.promote(out, bias)
    return ctx.b.op("add", x=out, y=bias)
