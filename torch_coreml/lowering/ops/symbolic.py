"""Symbolic-int arithmetic of dynamic shapes.

With `dynamic_shapes`, an exported graph reads sizes with `aten.sym_size.int` and combines them with
plain Python callables (`operator.mul(s0, 3)`, `operator.floordiv`, `torch.sym_max`, ...). Each
symbolic int is an int32 scalar Var computed from a `shape` op; the shape lowerings take them through
`ctx.int_list`. Python's `//` and `%` round toward negative infinity, as MIL's floor_div and mod do.
Runtime assertions on sizes (`_assert_scalar`) were checked by torch.export for the declared ranges,
and the package's input ranges enforce those, so they lower to nothing.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from .shape import axis_of, select_axis

aten = torch.ops.aten


@lowering(aten.sym_size.int)
def sym_size(ctx, self, dim):
    """sym_size.int(Tensor self, int dim) -> SymInt"""
    axis = axis_of(dim, self.rank)
    if isinstance(self.shape[axis], int):
        return ctx.const(np.int32(self.shape[axis]), dt.int32)
    return select_axis(ctx, ctx.b.op("shape", x=self), 0, axis)


@lowering(aten.sym_numel.default)
def sym_numel(ctx, self):
    """sym_numel(Tensor self) -> SymInt"""
    if all(isinstance(d, int) for d in self.shape):
        return ctx.const(np.int32(math.prod(self.shape)), dt.int32)
    return ctx.b.op("reduce_prod", x=ctx.b.op("shape", x=self), axes=[0], keep_dims=False)


@lowering(aten._assert_scalar.default, aten.sym_constrain_range_for_size.default)
def assert_scalar(ctx, self=None, assert_msg=None, min=None, max=None, size=None):
    """_assert_scalar(Scalar self, str assert_msg) -> ()"""
    return None


def _is_float(v) -> bool:
    return v.dtype.is_float if isinstance(v, Var) else isinstance(v, float)


def _operands(ctx, a, b):
    """Both operands in one MIL type: int32 for ints, fp32 once a float joins. Shape arithmetic stays in
    fp32 even in an fp16 program, where sizes above 2048 would round."""
    return ctx.promote(a, b, dtype=dt.fp32 if _is_float(a) or _is_float(b) else dt.int32)


def _binary(mil_op):
    def lower(ctx, a, b):
        x, y = _operands(ctx, a, b)
        return ctx.b.op(mil_op, x=x, y=y)

    lower.__doc__ = f"a {mil_op} b on symbolic ints"
    return lower


for _fn, _mil in [(operator.add, "add"), (operator.sub, "sub"), (operator.mul, "mul"),
                  (operator.floordiv, "floor_div"), (operator.mod, "mod"), (torch.sym_max, "maximum"),
                  (torch.sym_min, "minimum"), (operator.eq, "equal"), (operator.ne, "not_equal"),
                  (operator.lt, "less"), (operator.le, "less_equal"), (operator.gt, "greater"),
                  (operator.ge, "greater_equal")]:
    lowering(_fn)(_binary(_mil))


@lowering(operator.truediv)
def truediv(ctx, a, b):
    """a / b: true division in the program's float type."""
    x, y = ctx.promote(a, b, dtype=dt.fp32)
    return ctx.b.op("real_div", x=x, y=y)


@lowering(operator.neg)
def neg(ctx, a):
    """-a on a symbolic int."""
    x, y = _operands(ctx, 0, a)
    return ctx.b.op("sub", x=x, y=y)


def _rounded(mil_op):
    def lower(ctx, a):
        if not isinstance(a, Var):
            return int(getattr(math, mil_op)(a))
        return ctx.cast(ctx.b.op(mil_op, x=a) if a.dtype.is_float else a, dt.int32)

    lower.__doc__ = f"math.{mil_op}(a) on a symbolic float: an int"
    return lower


lowering(math.ceil)(_rounded("ceil"))
lowering(math.floor)(_rounded("floor"))


@lowering(torch.sym_float)
def sym_float(ctx, a):
    """torch.sym_float(a): a symbolic int as a float."""
    return ctx.promote(a, dtype=dt.fp32)[0]


@lowering(torch.sym_int)
def sym_int(ctx, a):
    """torch.sym_int(a): a symbolic float truncated to an int."""
    if not isinstance(a, Var) or not a.dtype.is_float:
        return a
    truncated = ctx.b.op("select", cond=ctx.b.op("less", x=a, y=0.0), a=ctx.b.op("ceil", x=a),
                         b=ctx.b.op("floor", x=a))
    return ctx.cast(truncated, dt.int32)
