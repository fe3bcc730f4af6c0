"""Tensor creation: full, full_like, empty (as zeros), empty_strided, arange and scalar_tensor; and the
triangle masks tril/triu, which MIL's band_part does in one op.

zeros/ones/new_*/*_like decompose into these. The result dtype comes from torch's metadata of the node
(which already applied torch's defaults) and falls back to the `dtype` argument. A small result is a
const; a larger one is a `fill` op so the package does not carry its elements.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ...mil.targets import Target
from ..registry import lowering
from .shape import int_vector

aten = torch.ops.aten

# Up to this many elements a filled tensor is stored as a const.
_CONST_ELEMENTS = 64


def result_dtype(ctx, dtype, fill_value=None) -> dt.DType:
    meta = ctx.out_dtype()
    if meta is not None:
        return meta
    if dtype is not None:
        return ctx.mil_dtype(dtype)
    return ctx.scalar_dtype(fill_value) if fill_value is not None else ctx.float_dtype


def filled(ctx, size, value, dtype: dt.DType) -> Var:
    """A tensor of `size` (ints and int32 scalar Vars, or a 1-D int32 shape Var) holding `value`."""
    if isinstance(value, Var):
        raise ctx.unsupported("a fill value known only at run time")
    if not isinstance(size, Var) and any(not isinstance(s, Var) and s == 0 for s in size):
        raise ctx.unsupported("a zero-sized tensor; Core ML has no empty tensors")
    (scalar,) = ctx.promote(value, dtype=dtype)
    static = not isinstance(size, Var) and all(not isinstance(s, Var) for s in size)
    if static and math.prod(size) <= _CONST_ELEMENTS:
        return ctx.const(np.full(tuple(int(s) for s in size), scalar.value, dtype.numpy), dtype)
    shape = size if isinstance(size, Var) else int_vector(ctx, size)
    return ctx.b.op("fill", shape=shape, value=scalar)


def keep_static_dims(ctx, x: Var, dims) -> Var:
    """A run-time `fill` shape makes every dim unknown to type inference; reshaping to the dims known
    at compile time (at most one -1) tells later ops which dims are static again."""
    if tuple(x.shape) == tuple(dims) or sum(not isinstance(d, int) for d in dims) > 1:
        return x
    return ctx.b.op("reshape", x=x, shape=[d if isinstance(d, int) else -1 for d in dims])


@lowering(aten.full.default)
def full(ctx, size, fill_value, dtype=None, layout=None, device=None, pin_memory=None):
    """full(SymInt[] size, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor"""
    out = filled(ctx, list(size), fill_value, result_dtype(ctx, dtype, fill_value))
    return keep_static_dims(ctx, out, [s if isinstance(s, int) else None for s in size])


@lowering(aten.full_like.default)
def full_like(ctx, self, fill_value, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    """full_like(Tensor self, Scalar fill_value, *, ScalarType? dtype=None, ...) -> Tensor"""
    out = result_dtype(ctx, dtype) if dtype is not None or ctx.node is not None else self.dtype
    if all(isinstance(d, int) for d in self.shape):
        return filled(ctx, list(self.shape), fill_value, out)
    if ctx.target >= Target.iOS16:  # fill_like keeps self's (symbolic) shape in the type
        return ctx.b.op("fill_like", ref_tensor=self, value=ctx.promote(fill_value, dtype=out)[0])
    return keep_static_dims(ctx, filled(ctx, ctx.b.op("shape", x=self), fill_value, out), self.shape)


@lowering(aten.empty.memory_format)
def empty(ctx, size, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    """empty.memory_format(SymInt[] size, *, ScalarType? dtype=None, ...) -> Tensor"""
    # Uninitialized memory may hold anything; zeros are one valid choice.
    return filled(ctx, list(size), 0, result_dtype(ctx, dtype))


@lowering(aten.empty_strided.default)
def empty_strided(ctx, size, stride, dtype=None, layout=None, device=None, pin_memory=None):
    """empty_strided(SymInt[] size, SymInt[] stride, *, ScalarType? dtype=None, ...) -> Tensor"""
    return filled(ctx, list(size), 0, result_dtype(ctx, dtype))


@lowering(aten.empty_permuted.default)
def empty_permuted(ctx, size, physical_layout, dtype=None, layout=None, device=None, pin_memory=None):
    """empty_permuted(SymInt[] size, int[] physical_layout, *, ScalarType? dtype=None, ...) -> Tensor"""
    return filled(ctx, list(size), 0, result_dtype(ctx, dtype))


@lowering(aten.new_empty_strided.default)
def new_empty_strided(ctx, self, size, stride, dtype=None, layout=None, device=None, pin_memory=None):
    """new_empty_strided(Tensor self, SymInt[] size, SymInt[] stride, *, ScalarType? dtype=None, ...) -> Tensor"""
    return filled(ctx, list(size), 0, result_dtype(ctx, dtype) if dtype is not None or ctx.node else self.dtype)


@lowering(aten.scalar_tensor.default)
def scalar_tensor(ctx, s, dtype=None, layout=None, device=None, pin_memory=None):
    """scalar_tensor(Scalar s, *, ScalarType? dtype=None, ...) -> Tensor"""
    return filled(ctx, [], s, result_dtype(ctx, dtype if dtype is not None else torch.float32))


@lowering(aten.arange.start_step)
def arange(ctx, start, end, step=1, dtype=None, layout=None, device=None, pin_memory=None):
    """arange.start_step(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, ...) -> Tensor"""
    bounds = (start, end, step)
    numbers = all(isinstance(v, (int, float)) for v in bounds)
    out = result_dtype(ctx, dtype, 0.0 if any(isinstance(v, float) for v in bounds) else 0)
    if numbers:
        values = torch.arange(start, end, step, dtype=torch.float64).numpy()
        if values.size == 0:
            raise ctx.unsupported(f"arange({start}, {end}, {step}) is empty; Core ML has no empty tensors")
        return ctx.const(values.astype(out.numpy), out)
    # A run-time bound (an int32 scalar Var): count in int32 when every bound is an integer.
    compute = dt.int32 if all(isinstance(v, (int, Var)) and (not isinstance(v, Var) or v.dtype is dt.int32)
                              for v in bounds) else ctx.float_dtype
    begin, stop, stride = ctx.promote(start, end, step, dtype=compute)
    return ctx.cast(ctx.b.op("range_1d", start=begin, end=stop, step=stride), out)


def _band(ctx, x: Var, lower: int, upper: int) -> Var:
    if x.rank < 2:
        raise ctx.unsupported("a triangle of a tensor of rank < 2")
    return ctx.b.op("band_part", x=x, lower=lower, upper=upper)


@lowering(aten.tril.default)
def tril(ctx, self, diagonal=0):
    """tril(Tensor self, int diagonal=0) -> Tensor"""
    # band_part keeps col - row <= upper (a negative bound keeps the whole side): tril with diagonal >= 0.
    if diagonal < 0:
        raise ctx.unsupported("tril below the main diagonal is not a band; torch's decomposition handles it")
    return _band(ctx, self, -1, diagonal)


@lowering(aten.triu.default)
def triu(ctx, self, diagonal=0):
    """triu(Tensor self, int diagonal=0) -> Tensor"""
    # band_part keeps row - col <= lower: triu with diagonal <= 0.
    if diagonal > 0:
        raise ctx.unsupported("triu above the main diagonal is not a band; torch's decomposition handles it")
    return _band(ctx, self, -diagonal, -1)
