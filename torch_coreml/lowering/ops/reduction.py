"""Reductions: sum, mean, prod, amax/amin, max/min (with indices), argmax/argmin, var/std,
any/all, logsumexp, vector norms and cumsum, on MIL `reduce_*` and `cumsum`.

MIL reductions take fp16/fp32/int32, so bools compute as int32; each result is cast to the dtype
torch's metadata gives the node (e.g. sum of bools is an integer, any() is a bool).
"""

from __future__ import annotations

import math

import torch

from ...mil import dtypes as dt
from ..registry import lowering
from ._nn_helpers import normalize_dims, rank, to_compute_float, to_numeric

aten = torch.ops.aten


def _finish(ctx, out, index=None):
    """Cast to the node's output dtype (known from metadata; absent in a dry run)."""
    want = ctx.out_dtype(index)
    return ctx.cast(out, want) if want is not None else out


def _with_dtype(ctx, x, dtype):
    return ctx.cast(x, ctx.mil_dtype(dtype)) if dtype is not None else x


def _reduce(ctx, mil_op, x, dim, keepdim):
    if rank(x) == 0:
        # torch reduces a 0-d tensor as a one-element vector (a norm of -2 is 2, not -2).
        return ctx.b.op(mil_op, x=ctx.b.op("expand_dims", x=x, axes=[0]), axes=[0], keep_dims=False)
    return ctx.b.op(mil_op, x=x, axes=normalize_dims(dim, rank(x)), keep_dims=bool(keepdim))


@lowering(aten.sum.dim_IntList, aten.sum.default)
def sum_(ctx, self, dim=None, keepdim=False, dtype=None):
    """sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    x = to_numeric(ctx, _with_dtype(ctx, self, dtype))
    return _finish(ctx, _reduce(ctx, "reduce_sum", x, dim, keepdim))


@lowering(aten.mean.dim, aten.mean.default)
def mean(ctx, self, dim=None, keepdim=False, dtype=None):
    """mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    x = to_compute_float(ctx, _with_dtype(ctx, self, dtype))
    return _finish(ctx, _reduce(ctx, "reduce_mean", x, dim, keepdim))


@lowering(aten.prod.default, aten.prod.dim_int)
def prod(ctx, self, dim=None, keepdim=False, dtype=None):
    """prod.dim_int(Tensor self, int dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    x = to_numeric(ctx, _with_dtype(ctx, self, dtype))
    return _finish(ctx, _reduce(ctx, "reduce_prod", x, dim, keepdim))


@lowering(aten.amax.default, aten.max.default)
def amax(ctx, self, dim=(), keepdim=False):
    """amax(Tensor self, int[1] dim=[], bool keepdim=False) -> Tensor"""
    return _finish(ctx, _reduce(ctx, "reduce_max", to_numeric(ctx, self), dim, keepdim))


@lowering(aten.amin.default, aten.min.default)
def amin(ctx, self, dim=(), keepdim=False):
    """amin(Tensor self, int[1] dim=[], bool keepdim=False) -> Tensor"""
    return _finish(ctx, _reduce(ctx, "reduce_min", to_numeric(ctx, self), dim, keepdim))


def _arg(ctx, mil_op, x, dim, keepdim):
    x = to_numeric(ctx, x)
    if rank(x) == 0:  # the one element is at index 0
        return ctx.const(0, dt.int32)
    if dim is None:  # over the flattened tensor
        flat = ctx.b.op("reshape", x=x, shape=[-1])
        out = ctx.b.op(mil_op, x=flat, axis=0, keep_dims=False)
        return ctx.b.op("reshape", x=out, shape=[1] * rank(x)) if keepdim else out
    return ctx.b.op(mil_op, x=x, axis=dim % rank(x), keep_dims=bool(keepdim))


@lowering(aten.argmax.default)
def argmax(ctx, self, dim=None, keepdim=False):
    """argmax(Tensor self, int? dim=None, bool keepdim=False) -> Tensor"""
    return _arg(ctx, "reduce_argmax", self, dim, keepdim)


@lowering(aten.argmin.default)
def argmin(ctx, self, dim=None, keepdim=False):
    """argmin(Tensor self, int? dim=None, bool keepdim=False) -> Tensor"""
    return _arg(ctx, "reduce_argmin", self, dim, keepdim)


@lowering(aten.max.dim)
def max_dim(ctx, self, dim, keepdim=False):
    """max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)"""
    values = _finish(ctx, _reduce(ctx, "reduce_max", to_numeric(ctx, self), [dim], keepdim), 0)
    return values, _arg(ctx, "reduce_argmax", self, dim, keepdim)


@lowering(aten.min.dim)
def min_dim(ctx, self, dim, keepdim=False):
    """min.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)"""
    values = _finish(ctx, _reduce(ctx, "reduce_min", to_numeric(ctx, self), [dim], keepdim), 0)
    return values, _arg(ctx, "reduce_argmin", self, dim, keepdim)


# -- variance -------------------------------------------------------------------------------------

def _bessel_ratio(ctx, x, axes, correction):
    """N / (N - correction) as a scalar of x's dtype, N being the number of reduced elements. The
    variance is the mean square times this ratio: a mean of squares and a ratio near 1 stay within
    fp16 range, where N itself or a sum of squares may not."""
    sizes = [x.shape[a] for a in axes]
    if all(isinstance(s, int) for s in sizes):
        count = math.prod(sizes)
        # torch divides by max(N - correction, 0): a zero divisor gives inf / nan as it does.
        return ctx.const(count / max(count - correction, 0) if count > correction else math.inf,
                         x.dtype)
    picked = ctx.b.op("gather", x=ctx.b.op("shape", x=x), indices=axes, axis=0)
    count = ctx.cast(ctx.b.op("reduce_prod", x=picked, axes=[0], keep_dims=False), x.dtype)
    # 1 / (1 - c / N): an N beyond fp16 range becomes inf and the ratio 1, as it should.
    fraction = ctx.b.op("real_div", x=ctx.const(correction, x.dtype), y=count)
    return ctx.b.op("real_div", x=ctx.const(1, x.dtype),
                    y=ctx.b.op("sub", x=ctx.const(1, x.dtype), y=fraction))


def _var_mean(ctx, self, dim, correction, keepdim):
    x = to_compute_float(ctx, self)
    if rank(x) == 0:  # a one-element vector, as torch sees it
        x, dim, keepdim = ctx.b.op("expand_dims", x=x, axes=[0]), [0], False
    axes = normalize_dims(dim, rank(x))
    mean_kept = ctx.b.op("reduce_mean", x=x, axes=axes, keep_dims=True)
    centered = ctx.b.op("sub", x=x, y=mean_kept)
    mean_square = ctx.b.op("reduce_mean", x=ctx.b.op("mul", x=centered, y=centered), axes=axes,
                           keep_dims=bool(keepdim))
    correction = 1 if correction is None else correction
    var = ctx.b.op("mul", x=mean_square, y=_bessel_ratio(ctx, x, axes, correction))
    mean = mean_kept if keepdim else ctx.b.op("squeeze", x=mean_kept, axes=axes)
    return var, mean


@lowering(aten.var.correction)
def var(ctx, self, dim=None, correction=None, keepdim=False):
    """var.correction(Tensor self, int[1]? dim=None, *, Scalar? correction=None, bool keepdim=False)
    -> Tensor"""
    return _var_mean(ctx, self, dim, correction, keepdim)[0]


@lowering(aten.std.correction)
def std(ctx, self, dim=None, correction=None, keepdim=False):
    """std.correction(Tensor self, int[1]? dim=None, *, Scalar? correction=None, bool keepdim=False)
    -> Tensor"""
    return ctx.b.op("sqrt", x=_var_mean(ctx, self, dim, correction, keepdim)[0])


@lowering(aten.var_mean.correction)
def var_mean(ctx, self, dim=None, correction=None, keepdim=False):
    """var_mean.correction(Tensor self, int[1]? dim=None, *, Scalar? correction=None,
    bool keepdim=False) -> (Tensor, Tensor)"""
    return _var_mean(ctx, self, dim, correction, keepdim)


@lowering(aten.std_mean.correction)
def std_mean(ctx, self, dim=None, correction=None, keepdim=False):
    """std_mean.correction(Tensor self, int[1]? dim=None, *, Scalar? correction=None,
    bool keepdim=False) -> (Tensor, Tensor)"""
    var, mean = _var_mean(ctx, self, dim, correction, keepdim)
    return ctx.b.op("sqrt", x=var), mean


# -- logical --------------------------------------------------------------------------------------

def _truth_as_int(ctx, x):
    if x.dtype is not dt.bool_:
        x = ctx.b.op("not_equal", x=x, y=ctx.const(0, x.dtype))
    return ctx.cast(x, dt.int32)


def _logical(ctx, mil_op, x, dim, keepdim):
    out = _reduce(ctx, mil_op, _truth_as_int(ctx, x), dim, keepdim)
    return _finish(ctx, ctx.cast(out, dt.bool_))


@lowering(aten.any.default, aten.any.dim, aten.any.dims)
def any_(ctx, self, dim=None, keepdim=False):
    """any.dims(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor"""
    return _logical(ctx, "reduce_max", self, dim, keepdim)


@lowering(aten.all.default, aten.all.dim, aten.all.dims)
def all_(ctx, self, dim=None, keepdim=False):
    """all.dims(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor"""
    return _logical(ctx, "reduce_min", self, dim, keepdim)


# -- log-sum-exp, norms, cumsum ---------------------------------------------------------------------

@lowering(aten.logsumexp.default)
def logsumexp(ctx, self, dim, keepdim=False):
    """logsumexp(Tensor self, int[1] dim, bool keepdim=False) -> Tensor"""
    return _reduce(ctx, "reduce_log_sum_exp", to_compute_float(ctx, self), dim, keepdim)


@lowering(aten.linalg_vector_norm.default)
def linalg_vector_norm(ctx, self, ord=2, dim=None, keepdim=False, dtype=None):
    """linalg_vector_norm(Tensor self, Scalar ord=2, int[1]? dim=None, bool keepdim=False, *,
    ScalarType? dtype=None) -> Tensor"""
    x = to_compute_float(ctx, _with_dtype(ctx, self, dtype))
    if ord == 2:
        return _reduce(ctx, "reduce_l2_norm", x, dim, keepdim)
    if ord == 1:
        return _reduce(ctx, "reduce_l1_norm", x, dim, keepdim)
    magnitude = ctx.b.op("abs", x=x)
    if ord == math.inf:
        return _reduce(ctx, "reduce_max", magnitude, dim, keepdim)
    if ord == -math.inf:
        return _reduce(ctx, "reduce_min", magnitude, dim, keepdim)
    if ord == 0:
        nonzero = ctx.cast(ctx.b.op("not_equal", x=x, y=ctx.const(0, x.dtype)), x.dtype)
        return _reduce(ctx, "reduce_sum", nonzero, dim, keepdim)
    if ord < 0:
        raise ctx.unsupported("a negative vector-norm order (zeros would need inf arithmetic)")
    powered = ctx.b.op("pow", x=magnitude, y=ctx.const(float(ord), x.dtype))
    total = _reduce(ctx, "reduce_sum", powered, dim, keepdim)
    return ctx.b.op("pow", x=total, y=ctx.const(1.0 / ord, x.dtype))


@lowering(aten.cumsum.default)
def cumsum(ctx, self, dim, dtype=None):
    """cumsum(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor"""
    x = to_numeric(ctx, _with_dtype(ctx, self, dtype))
    if rank(x) == 0:
        return _finish(ctx, ctx.b.op("identity", x=x))
    return _finish(ctx, ctx.b.op("cumsum", x=x, axis=dim % rank(x)))
