"""Scans along one dim: cumprod, cummax / cummin (values and indices) and logcumsumexp.

MIL has cumsum only. Each scan here combines an earlier partial result with a later one by an
associative rule, so it runs as a log-depth (Hillis-Steele) scan: at step s every position combines
with the position s places before it, for s = 1, 2, 4, ... below the length. A static length unrolls
its ceil(log2 L) steps; a run-time length runs them in a `while_loop` that doubles s. The earlier
operand is a gather of positions max(i - s, 0), and positions below s keep their value by `select`,
so no identity element (1, -inf, ...) has to exist in the dtype.

A sequential scan would need L steps and would not reproduce torch's rounding either: torch's CPU
cumprod accumulates float32 in double. The tree's rounding error grows with log L rather than L.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from ._nn_helpers import rank, to_compute_float, to_numeric
from .elementwise import binary
from .indexing import dim_size, gather_op
from .unary import accurate_log1p

aten = torch.ops.aten


def in_block(ctx, b):
    """A context that emits into a nested block's builder (the helpers write through ctx.b)."""
    inner = copy.copy(ctx)
    inner.b = b
    return inner


def _axis(ctx, x: Var, dim: int) -> int:
    if not -max(rank(x), 1) <= dim < max(rank(x), 1):
        raise ctx.unsupported(f"dim {dim} is out of range for a tensor of rank {rank(x)}")
    return dim % max(rank(x), 1)


def _scan(ctx, values: list[Var], axis: int, combine) -> list[Var]:
    """Inclusive scan of the tensors `values` (one shape) along `axis`.

    `combine(ctx, earlier, later)` merges two partial results, each a list like `values`; it must be
    associative, and is only called as (positions before, positions after)."""
    x = values[0]
    length, trailing = x.shape[axis], [1] * (rank(x) - 1 - axis)
    if isinstance(length, int):
        positions = np.arange(length, dtype=np.int32)
        s = 1
        while s < length:
            source = ctx.const(np.maximum(positions - s, 0).astype(np.int32), dt.int32)
            valid = ctx.const((positions >= s).reshape([length] + trailing), dt.bool_)
            values = _step(ctx, values, axis, source, valid, combine)
            s *= 2
        return values

    size = dim_size(ctx, x, axis)
    positions = ctx.b.op("range_1d", start=np.int32(0), end=size, step=np.int32(1))

    def more(b, loop_vars):
        return b.op("less", x=loop_vars[-1], y=size)

    def step(b, loop_vars):
        inner, s = in_block(ctx, b), loop_vars[-1]
        source = b.op("maximum", x=b.op("sub", x=positions, y=s), y=np.int32(0))
        valid = b.op("reshape", x=b.op("greater_equal", x=positions, y=s), shape=[-1] + trailing)
        return _step(inner, loop_vars[:-1], axis, source, valid, combine) + [b.op("mul", x=s, y=np.int32(2))]

    out = ctx.b.while_loop(list(values) + [ctx.const(np.int32(1), dt.int32)], more, step)
    return list(out[:-1])


def _step(ctx, values: list[Var], axis: int, source: Var, valid: Var, combine) -> list[Var]:
    earlier = [gather_op(ctx, "gather", v, indices=source, axis=axis) for v in values]
    combined = combine(ctx, earlier, values)
    return [ctx.b.op("select", cond=valid, a=c, b=v) for c, v in zip(combined, values)]


def _finish(ctx, out: Var, index: int | None = None) -> Var:
    """Cast to the node's output dtype (from metadata; absent in a dry run)."""
    want = ctx.out_dtype(index)
    return ctx.cast(out, want) if want is not None else out


# -- cumprod ---------------------------------------------------------------------------------------

def _product(ctx, earlier, later):
    return [ctx.b.op("mul", x=earlier[0], y=later[0])]


@lowering(aten.cumprod.default)
def cumprod(ctx, self, dim, dtype=None):
    """cumprod(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor"""
    x = to_numeric(ctx, ctx.cast(self, ctx.mil_dtype(dtype)) if dtype is not None else self)
    axis = _axis(ctx, x, dim)
    if rank(x) == 0:
        return _finish(ctx, x)
    (out,) = _scan(ctx, [x], axis, _product)
    return _finish(ctx, out)


# -- cummax / cummin -------------------------------------------------------------------------------

def _extreme(later_wins: str):
    """Keep the later element where it compares `later_wins` (>= for cummax: ties go to the latest
    position, as in torch) or is NaN (torch's running extreme sticks at the latest NaN)."""

    def combine(ctx, earlier, later):
        (v0, i0), (v1, i1) = earlier, later
        take = ctx.b.op(later_wins, x=v1, y=v0)  # false against a NaN on either side
        if v1.dtype.is_float:
            take = ctx.b.op("logical_or", x=take, y=ctx.b.op("not_equal", x=v1, y=v1))
        return [ctx.b.op("select", cond=take, a=v1, b=v0), ctx.b.op("select", cond=take, a=i1, b=i0)]

    return combine


def _running_extreme(ctx, self: Var, dim: int, later_wins: str):
    x = to_numeric(ctx, self)
    axis = _axis(ctx, x, dim)
    if rank(x) == 0:
        return _finish(ctx, ctx.cast(x, self.dtype), 0), ctx.const(np.int32(0), dt.int32)
    length, trailing = x.shape[axis], [1] * (rank(x) - 1 - axis)
    if isinstance(length, int):
        positions = ctx.const(np.arange(length, dtype=np.int32).reshape([length] + trailing), dt.int32)
    else:
        size = dim_size(ctx, x, axis)
        positions = ctx.b.op("reshape", x=ctx.b.op("range_1d", start=np.int32(0), end=size, step=np.int32(1)),
                             shape=[-1] + trailing)
    # Indices of x's full shape (a while_loop carries fixed types): positions + zeros like x.
    zeros = ctx.cast(ctx.b.op("less", x=x, y=x), dt.int32)
    indices = ctx.b.op("add", x=zeros, y=positions)
    values, indices = _scan(ctx, [x, indices], axis, _extreme(later_wins))
    return _finish(ctx, ctx.cast(values, self.dtype), 0), indices


@lowering(aten.cummax.default)
def cummax(ctx, self, dim):
    """cummax(Tensor self, int dim) -> (Tensor values, Tensor indices)"""
    return _running_extreme(ctx, self, dim, "greater_equal")


@lowering(aten.cummin.default)
def cummin(ctx, self, dim):
    """cummin(Tensor self, int dim) -> (Tensor values, Tensor indices)"""
    return _running_extreme(ctx, self, dim, "less_equal")


# -- logcumsumexp ----------------------------------------------------------------------------------

def _log_add_exp(ctx, earlier, later):
    """log(exp(a) + exp(b)) = hi + log1p(exp(lo - hi)): exp never overflows, and NaN propagates."""
    a, b = earlier[0], later[0]
    hi, lo = ctx.b.op("maximum", x=a, y=b), ctx.b.op("minimum", x=a, y=b)
    general = ctx.b.op("add", x=hi, y=accurate_log1p(ctx, ctx.b.op("exp", x=ctx.b.op("sub", x=lo, y=hi))))
    # Two equal infinities: lo - hi would be NaN (inf - inf); their sum is that infinity itself.
    same_infinity = ctx.b.op("logical_and", x=ctx.b.op("equal", x=lo, y=hi),
                             y=binary(ctx, "equal", ctx.b.op("abs", x=hi), math.inf))
    return [ctx.b.op("select", cond=same_infinity, a=hi, b=general)]


@lowering(aten.logcumsumexp.default)
def logcumsumexp(ctx, self, dim):
    """logcumsumexp(Tensor self, int dim) -> Tensor"""
    x = to_compute_float(ctx, self)
    axis = _axis(ctx, x, dim)
    if rank(x) == 0:
        return x
    (out,) = _scan(ctx, [x], axis, _log_add_exp)
    return out
