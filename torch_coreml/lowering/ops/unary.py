"""Elementwise math functions: exp/log families, trigonometry, rounding, sign and NaN/inf tests.

torch computes float-only functions of int and bool tensors in the default float type, so those
inputs are cast first (`to_float`). Functions MIL lacks are built from the ones it has; where such a
formula is less accurate than torch's, the docstring says so.
"""

from __future__ import annotations

import math

import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from .elementwise import binary, select, to_float, trunc_float

aten = torch.ops.aten


def float_unary(name: str, mil_op: str):
    """A lowering that casts the input to the program's float type and applies one MIL op."""
    def unary(ctx, self):
        return ctx.b.op(mil_op, x=to_float(ctx, self))

    unary.__name__ = name
    unary.__doc__ = f"{name}(Tensor self) -> Tensor"
    return unary


for _name in ("sqrt", "exp", "exp2", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
              "atanh", "erf"):
    lowering(getattr(aten, _name).default)(float_unary(_name, _name))


@lowering(aten.abs.default)
def abs_(ctx, self):
    """abs(Tensor self) -> Tensor"""
    return self if self.dtype is dt.bool_ else ctx.b.op("abs", x=self)


@lowering(aten.sign.default)
def sign(ctx, self):
    """sign(Tensor self) -> Tensor"""
    return self if self.dtype is dt.bool_ else ctx.b.op("sign", x=self)


# -- reciprocals and logarithms: MIL adds an epsilon by default, torch does not ------------------

@lowering(aten.reciprocal.default)
def reciprocal(ctx, self):
    """reciprocal(Tensor self) -> Tensor"""
    return ctx.b.op("inverse", x=to_float(ctx, self), epsilon=0.0)


@lowering(aten.rsqrt.default)
def rsqrt(ctx, self):
    """rsqrt(Tensor self) -> Tensor"""
    return ctx.b.op("rsqrt", x=to_float(ctx, self), epsilon=0.0)


def natural_log(ctx, x):
    return ctx.b.op("log", x=to_float(ctx, x), epsilon=0.0)


@lowering(aten.log.default)
def log(ctx, self):
    """log(Tensor self) -> Tensor"""
    return natural_log(ctx, self)


@lowering(aten.log2.default)
def log2(ctx, self):
    """log2(Tensor self) -> Tensor"""
    return binary(ctx, "mul", natural_log(ctx, self), 1.0 / math.log(2.0))


@lowering(aten.log10.default)
def log10(ctx, self):
    """log10(Tensor self) -> Tensor"""
    return binary(ctx, "mul", natural_log(ctx, self), 1.0 / math.log(10.0))


def accurate_log1p(ctx, x):
    """log(1 + x) to full relative precision near 0, from MIL's log (Goldberg's correction).

    u = 1 + x rounds away the low bits of x; u - 1 is exact, so log(u) * x / (u - 1) restores them.
    That factor is only needed for |x| < 1; where u == 1 the answer is x itself."""
    u = binary(ctx, "add", x, 1.0)
    d = binary(ctx, "sub", u, 1.0)
    log_u = natural_log(ctx, u)
    corrected = ctx.b.op("mul", x=log_u, y=ctx.b.op("real_div", x=x, y=d))
    near_zero = binary(ctx, "less", ctx.b.op("abs", x=x), 1.0)
    result = ctx.b.op("select", cond=near_zero, a=corrected, b=log_u)
    return ctx.b.op("select", cond=binary(ctx, "equal", d, 0.0), a=x, b=result)


@lowering(aten.log1p.default)
def log1p(ctx, self):
    """log1p(Tensor self) -> Tensor"""
    return accurate_log1p(ctx, to_float(ctx, self))


@lowering(aten.expm1.default)
def expm1(ctx, self):
    """expm1(Tensor self) -> Tensor"""
    # Kahan's correction of exp(x) - 1 for |x| < 1: (u - 1) * x / log(u) with u = exp(x) cancels the
    # rounding error of u. Where u == 1 the answer is x; for |x| >= 1, u - 1 is already accurate.
    x = to_float(ctx, self)
    u = ctx.b.op("exp", x=x)
    d = binary(ctx, "sub", u, 1.0)
    corrected = ctx.b.op("mul", x=d, y=ctx.b.op("real_div", x=x, y=natural_log(ctx, u)))
    near_zero = binary(ctx, "less", ctx.b.op("abs", x=x), 1.0)
    result = ctx.b.op("select", cond=near_zero, a=corrected, b=d)
    return ctx.b.op("select", cond=binary(ctx, "equal", u, 1.0), a=x, b=result)


# -- inverse hyperbolic functions and atan2 (no MIL op) ------------------------------------------

def _in_fp32(ctx, x, formula):
    """Evaluate `formula` in fp32 even in an fp16 program, whose range (65504) it would exceed."""
    return ctx.cast(formula(ctx.cast(to_float(ctx, x), dt.fp32)), ctx.float_dtype)


@lowering(aten.asinh.default)
def asinh(ctx, self):
    """asinh(Tensor self) -> Tensor"""
    # sign(x) * log1p(a + a^2 / (1 + sqrt(a^2 + 1))) with a = |x|: accurate near 0 and, written as
    # a / (1/a + sqrt(1/a^2 + 1)), free of overflow for large a (1/0 = inf gives 0, as it should).
    x = to_float(ctx, self)
    a = ctx.b.op("abs", x=x)
    inv = ctx.b.op("inverse", x=a, epsilon=0.0)
    root = ctx.b.op("sqrt", x=binary(ctx, "add", ctx.b.op("square", x=inv), 1.0))
    tail = ctx.b.op("real_div", x=a, y=ctx.b.op("add", x=inv, y=root))
    magnitude = accurate_log1p(ctx, ctx.b.op("add", x=a, y=tail))
    return ctx.b.op("mul", x=ctx.b.op("sign", x=x), y=magnitude)


@lowering(aten.acosh.default)
def acosh(ctx, self):
    """acosh(Tensor self) -> Tensor"""

    def formula(x):
        # log1p((x - 1) + sqrt(x - 1) * sqrt(x + 1)): no x * x to overflow, accurate near 1, NaN below 1.
        below = binary(ctx, "sub", x, 1.0)
        root = ctx.b.op("mul", x=ctx.b.op("sqrt", x=below), y=ctx.b.op("sqrt", x=binary(ctx, "add", x, 1.0)))
        return accurate_log1p(ctx, ctx.b.op("add", x=below, y=root))

    return _in_fp32(ctx, self, formula)


@lowering(aten.atan2.default)
def atan2(ctx, self, other):
    """atan2(Tensor self, Tensor other) -> Tensor"""
    y, x = ctx.promote(to_float(ctx, self), to_float(ctx, other))
    # atan(y / x) is right for x > 0 and, via y / 0 = +-inf, for x = 0; for x < 0 add +-pi.
    base = ctx.b.op("atan", x=ctx.b.op("real_div", x=y, y=x))
    shifted = ctx.b.op("select", cond=binary(ctx, "greater_equal", y, 0.0),
                       a=binary(ctx, "add", base, math.pi), b=binary(ctx, "sub", base, math.pi))
    angle = ctx.b.op("select", cond=binary(ctx, "less", x, 0.0), a=shifted, b=base)
    # 0 / 0 is NaN; torch gives atan2(0, 0) = 0.
    origin = ctx.b.op("logical_and", x=binary(ctx, "equal", x, 0.0), y=binary(ctx, "equal", y, 0.0))
    return select(ctx, origin, 0.0, angle)


# -- rounding: identity on integers, as in torch -------------------------------------------------

def _rounding(name: str, mil_op: str):
    def rounding(ctx, self):
        return self if not self.dtype.is_float else ctx.b.op(mil_op, x=self)

    rounding.__name__ = name
    rounding.__doc__ = f"{name}(Tensor self) -> Tensor"
    return rounding


for _name in ("floor", "ceil", "round"):
    # MIL `round` sends exact halves to the even neighbour, as torch does.
    lowering(getattr(aten, _name).default)(_rounding(_name, _name))


@lowering(aten.round.decimals)
def round_decimals(ctx, self, decimals=0):
    """round.decimals(Tensor self, *, int decimals) -> Tensor"""
    if not self.dtype.is_float:
        if decimals < 0:
            raise ctx.unsupported("round of an integer tensor to negative decimals")
        return self
    if decimals == 0:
        return ctx.b.op("round", x=self)
    # torch's formula: scale by 10^|decimals|, round half to even, scale back.
    scale = 10.0 ** abs(decimals)
    if decimals > 0:
        return binary(ctx, "real_div", ctx.b.op("round", x=binary(ctx, "mul", self, scale)), scale)
    return binary(ctx, "mul", ctx.b.op("round", x=binary(ctx, "real_div", self, scale)), scale)


@lowering(aten.trunc.default)
def trunc(ctx, self):
    """trunc(Tensor self) -> Tensor"""
    return self if not self.dtype.is_float else trunc_float(ctx, self)


# -- NaN and infinity tests ----------------------------------------------------------------------

def _all_false(ctx, x):
    """A bool tensor shaped like x, all false: integers are never NaN or infinite."""
    x = ctx.cast(x, dt.int32)
    return ctx.b.op("not_equal", x=x, y=x)


@lowering(aten.isnan.default)
def isnan(ctx, self):
    """isnan(Tensor self) -> Tensor"""
    if not self.dtype.is_float:
        return _all_false(ctx, self)
    return ctx.b.op("not_equal", x=self, y=self)  # NaN is the only value unequal to itself


@lowering(aten.isinf.default)
def isinf(ctx, self):
    """isinf(Tensor self) -> Tensor"""
    if not self.dtype.is_float:
        return _all_false(ctx, self)
    return binary(ctx, "equal", ctx.b.op("abs", x=self), math.inf)


# -- ops torch.export leaves whole although they are not Core ATen --------------------------------

@lowering(aten.erfc.default)
def erfc(ctx, self):
    """erfc(Tensor self) -> Tensor

    As 1 - erf(x): accurate in absolute terms; tiny tails for large x become 0."""
    return binary(ctx, "sub", 1.0, ctx.b.op("erf", x=to_float(ctx, self)))


def _sign_bit(ctx, x):
    """True where x is negative, -0.0 included (1 / -0.0 is -inf)."""
    negative_zero = ctx.b.op("logical_and", x=binary(ctx, "equal", x, 0.0),
                             y=binary(ctx, "less", binary(ctx, "real_div", 1.0, x), 0.0))
    return ctx.b.op("logical_or", x=binary(ctx, "less", x, 0.0), y=negative_zero)


@lowering(aten.signbit.default)
def signbit(ctx, self):
    """signbit(Tensor self) -> Tensor"""
    if not self.dtype.is_float:
        return binary(ctx, "less", self, 0) if self.dtype is not dt.bool_ else _all_false(ctx, self)
    return _sign_bit(ctx, self)


@lowering(aten.copysign.Tensor, aten.copysign.Scalar)
def copysign(ctx, self, other):
    """copysign.Tensor(Tensor self, Tensor other) -> Tensor"""
    magnitude = ctx.b.op("abs", x=to_float(ctx, self))
    sign_source = to_float(ctx, other) if isinstance(other, Var) else ctx.promote(other, dtype=ctx.float_dtype)[0]
    negative = _sign_bit(ctx, sign_source)
    return select(ctx, negative, ctx.b.op("mul", x=magnitude, y=ctx.const(-1.0, magnitude.dtype)), magnitude)


@lowering(aten.hypot.default)
def hypot(ctx, self, other):
    """hypot(Tensor self, Tensor other) -> Tensor"""

    def formula(x):
        y = ctx.cast(to_float(ctx, other), dt.fp32)
        return ctx.b.op("sqrt", x=ctx.b.op("add", x=ctx.b.op("square", x=x), y=ctx.b.op("square", x=y)))

    return _in_fp32(ctx, self, formula)
