"""Elementwise arithmetic, comparison, logical and selection ops: torch promotion, then MIL ops.

Promotion is `ctx.promote` (torch's rules). MIL arithmetic and comparisons have no bool domain, so
bool operands compute as int32 there (`numeric_dtype`). Integer division follows torch, not MIL: `/`
gives a float, `//` and `remainder` round toward negative infinity, `trunc` division and `fmod` round
toward zero. The helpers at the top are shared by the other pointwise modules.
"""

from __future__ import annotations

import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering

aten = torch.ops.aten


# -- shared helpers --------------------------------------------------------------------------------

def numeric_dtype(ctx, *values) -> dt.DType:
    """torch's result dtype for arithmetic, with bool computed as int32 (MIL arithmetic has no bool)."""
    dtype = ctx.result_dtype(*values)
    return dt.int32 if dtype is dt.bool_ else dtype


def binary(ctx, mil_op: str, a, b, dtype: dt.DType | None = None) -> Var:
    """One broadcasting MIL binary op on a and b promoted to `dtype` (torch's choice if None)."""
    x, y = ctx.promote(a, b, dtype=dtype)
    return ctx.b.op(mil_op, x=x, y=y)


def to_float(ctx, x: Var) -> Var:
    """x in the program's float type: torch computes float-only functions of ints and bools in float."""
    return x if x.dtype.is_float else ctx.cast(x, ctx.float_dtype)


def to_bool(ctx, x) -> Var:
    """x as a bool tensor; nonzero is true, as in torch's logical ops."""
    return ctx.promote(x, dtype=dt.bool_)[0] if not isinstance(x, Var) else ctx.cast(x, dt.bool_)


def select(ctx, cond: Var, a, b) -> Var:
    """a where cond, else b, with a and b promoted to one dtype."""
    a, b = ctx.promote(a, b)
    if not _covers(_broadcast_shape(a.shape, b.shape), cond.shape):
        # coremltools (and so Core ML's own tooling) infers select's shape from a and b alone, so the
        # values must span cond's shape: where(cond, 1.0, 0.0) would otherwise come out a scalar.
        a = _broadcast_like(ctx, a, cond)
    return ctx.b.op("select", cond=cond, a=a, b=b)


def _broadcast_shape(s, t) -> tuple:
    s, t = (1,) * (len(t) - len(s)) + tuple(s), (1,) * (len(s) - len(t)) + tuple(t)
    return tuple(d if e == 1 else e for d, e in zip(s, t))


def _covers(shape, target) -> bool:
    """True when `shape` certainly has every dim of `target` (a 1 is not enough for a dim above 1)."""
    if len(shape) < len(target):
        return False
    return all(d == e or e == 1 for d, e in zip(shape[len(shape) - len(target):], target))


def _broadcast_like(ctx, x: Var, like: Var) -> Var:
    """x broadcast against `like` (a bool tensor), values unchanged."""
    if x.is_const and x.rank == 0:
        return ctx.b.op("fill", shape=ctx.shape_var(like), value=x)
    nothing = ctx.b.op("logical_and", x=like, y=ctx.b.op("logical_not", x=like))  # all false
    if x.dtype is dt.bool_:
        return ctx.b.op("logical_or", x=x, y=nothing)
    return ctx.b.op("add", x=x, y=ctx.cast(nothing, x.dtype))  # + 0 keeps every value, inf and NaN too


def clamp_between(ctx, x: Var, low, high) -> Var:
    """min(max(x, low), high) with either bound None; scalar float bounds use one `clip`."""
    dtype = numeric_dtype(ctx, x, low, high)
    x = ctx.cast(x, dtype)
    scalars = not isinstance(low, Var) and not isinstance(high, Var)
    if dtype.is_float and scalars and low is not None and high is not None and low < high:
        # `clip` is float-only and, from iOS17, requires low < high; other cases take max then min,
        # which also gives torch's answer (high everywhere) when low > high.
        return ctx.b.op("clip", x=x, alpha=float(low), beta=float(high))
    if low is not None:
        x = binary(ctx, "maximum", x, low, dtype)
    if high is not None:
        x = binary(ctx, "minimum", x, high, dtype)
    return x


# -- arithmetic ------------------------------------------------------------------------------------

@lowering(aten.add.Tensor, aten.add.Scalar)
def add(ctx, self, other, alpha=1):
    """add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"""
    if ctx.result_dtype(self, other) is dt.bool_:
        return binary(ctx, "logical_or", self, other)  # torch adds bools as logical or
    if alpha != 1:
        other = binary(ctx, "mul", other, alpha, numeric_dtype(ctx, other, alpha))
    return binary(ctx, "add", self, other, numeric_dtype(ctx, self, other))


@lowering(aten.sub.Tensor, aten.sub.Scalar)
def sub(ctx, self, other, alpha=1):
    """sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"""
    if alpha != 1:
        other = binary(ctx, "mul", other, alpha, numeric_dtype(ctx, other, alpha))
    return binary(ctx, "sub", self, other, numeric_dtype(ctx, self, other))


@lowering(aten.mul.Tensor, aten.mul.Scalar)
def mul(ctx, self, other):
    """mul.Tensor(Tensor self, Tensor other) -> Tensor"""
    if ctx.result_dtype(self, other) is dt.bool_:
        return binary(ctx, "logical_and", self, other)  # torch multiplies bools as logical and
    return binary(ctx, "mul", self, other, numeric_dtype(ctx, self, other))


@lowering(aten.div.Tensor, aten.div.Scalar, aten.div.Tensor_mode, aten.div.Scalar_mode)
def div(ctx, self, other, rounding_mode=None):
    """div.Tensor_mode(Tensor self, Tensor other, *, str? rounding_mode) -> Tensor"""
    dtype = numeric_dtype(ctx, self, other)
    if rounding_mode is None:
        # True division: integers divide as floats, as in torch.
        return binary(ctx, "real_div", self, other, dtype if dtype.is_float else ctx.float_dtype)
    if rounding_mode == "floor":
        return binary(ctx, "floor_div", self, other, dtype)
    if rounding_mode != "trunc":
        raise ctx.unsupported(f"div rounding_mode {rounding_mode!r}")
    if dtype.is_float:
        return trunc_float(ctx, binary(ctx, "real_div", self, other, dtype))
    # Integers: |x| // |y| is exact, and the quotient's sign is sign(x) * sign(y).
    x, y = ctx.promote(self, other, dtype=dtype)
    magnitude = ctx.b.op("floor_div", x=ctx.b.op("abs", x=x), y=ctx.b.op("abs", x=y))
    sign = ctx.b.op("mul", x=ctx.b.op("sign", x=x), y=ctx.b.op("sign", x=y))
    return ctx.b.op("mul", x=magnitude, y=sign)


def trunc_float(ctx, x: Var) -> Var:
    """Round a float tensor toward zero (MIL has floor and ceil but no trunc); NaN stays NaN."""
    negative = binary(ctx, "less", x, 0.0)
    return ctx.b.op("select", cond=negative, a=ctx.b.op("ceil", x=x), b=ctx.b.op("floor", x=x))


@lowering(aten.remainder.Tensor, aten.remainder.Scalar, aten.remainder.Scalar_Tensor)
def remainder(ctx, self, other):
    """remainder.Tensor(Tensor self, Tensor other) -> Tensor"""
    # MIL `mod` is the remainder of floor division (the sign of the divisor), like torch's.
    return binary(ctx, "mod", self, other, numeric_dtype(ctx, self, other))


@lowering(aten.fmod.Tensor, aten.fmod.Scalar)
def fmod(ctx, self, other):
    """fmod.Tensor(Tensor self, Tensor other) -> Tensor"""
    # fmod takes the dividend's sign: where `mod` gave a nonzero remainder of the other sign, step
    # back by one divisor. Exact for ints and floats alike.
    x, y = ctx.promote(self, other, dtype=numeric_dtype(ctx, self, other))
    r = ctx.b.op("mod", x=x, y=y)
    signs_differ = ctx.b.op("logical_xor", x=binary(ctx, "less", r, 0), y=binary(ctx, "less", x, 0))
    fix = ctx.b.op("logical_and", x=binary(ctx, "not_equal", r, 0), y=signs_differ)
    return ctx.b.op("select", cond=fix, a=ctx.b.op("sub", x=r, y=y), b=r)


@lowering(aten.pow.Tensor_Tensor, aten.pow.Tensor_Scalar, aten.pow.Scalar)
def pow_(ctx, self, exponent):
    """pow.Tensor_Tensor(Tensor self, Tensor exponent) -> Tensor"""
    dtype = numeric_dtype(ctx, self, exponent)
    if isinstance(self, Var) and not isinstance(exponent, Var):
        if exponent == 1:
            return ctx.cast(self, dtype)
        if exponent == 2:
            return ctx.b.op("square", x=ctx.cast(self, dtype))
        if exponent == 0.5 and dtype.is_float:
            return ctx.b.op("sqrt", x=ctx.cast(self, dtype))
    return binary(ctx, "pow", self, exponent, dtype)


@lowering(aten.neg.default)
def neg(ctx, self):
    """neg(Tensor self) -> Tensor"""
    if self.dtype is dt.bool_:
        raise ctx.unsupported("neg of a bool tensor (torch refuses it too)")
    return binary(ctx, "mul", self, -1)


@lowering(aten.maximum.default)
def maximum(ctx, self, other):
    """maximum(Tensor self, Tensor other) -> Tensor"""
    if ctx.result_dtype(self, other) is dt.bool_:
        return binary(ctx, "logical_or", self, other)
    return binary(ctx, "maximum", self, other, numeric_dtype(ctx, self, other))


@lowering(aten.minimum.default)
def minimum(ctx, self, other):
    """minimum(Tensor self, Tensor other) -> Tensor"""
    if ctx.result_dtype(self, other) is dt.bool_:
        return binary(ctx, "logical_and", self, other)
    return binary(ctx, "minimum", self, other, numeric_dtype(ctx, self, other))


def _nan_ignoring(name: str, mil_op: str):
    def extremum(ctx, self, other):
        dtype = numeric_dtype(ctx, self, other)
        x, y = ctx.promote(self, other, dtype=dtype)
        both = ctx.b.op(mil_op, x=x, y=y)
        if not dtype.is_float:
            return both
        # Unlike maximum/minimum, a NaN loses to a number: take the other operand where one is NaN.
        y_kept = ctx.b.op("select", cond=ctx.b.op("not_equal", x=x, y=x), a=y, b=both)
        return ctx.b.op("select", cond=ctx.b.op("not_equal", x=y, y=y), a=x, b=y_kept)

    extremum.__name__ = name
    extremum.__doc__ = f"{name}(Tensor self, Tensor other) -> Tensor"
    return extremum


lowering(aten.fmax.default)(_nan_ignoring("fmax", "maximum"))
lowering(aten.fmin.default)(_nan_ignoring("fmin", "minimum"))


@lowering(aten.clamp.default, aten.clamp.Tensor)
def clamp(ctx, self, min=None, max=None):  # noqa: A002 - the schema's names
    """clamp.Tensor(Tensor self, Tensor? min=None, Tensor? max=None) -> Tensor"""
    return clamp_between(ctx, self, min, max)


# -- comparisons -----------------------------------------------------------------------------------

def _comparison(name: str, mil_op: str):
    def compare(ctx, self, other):
        dtype = numeric_dtype(ctx, self, other)
        if dtype.is_float and not any(isinstance(v, Var) and v.dtype.is_float for v in (self, other)):
            # An integer tensor against a float scalar: compare in fp32, exact for ints up to 2^24
            # as in torch, even in an fp16 program (the result is bool either way).
            dtype = dt.fp32
        return binary(ctx, mil_op, self, other, dtype)

    compare.__name__ = name
    compare.__doc__ = f"{name}.Tensor(Tensor self, Tensor other) -> Tensor"
    return compare


for _packet, _mil_op in ((aten.eq, "equal"), (aten.ne, "not_equal"), (aten.lt, "less"),
                         (aten.le, "less_equal"), (aten.gt, "greater"), (aten.ge, "greater_equal")):
    lowering(_packet.Tensor, _packet.Scalar)(_comparison(_packet.__name__, _mil_op))


# -- logical and bitwise ---------------------------------------------------------------------------

def _logical(name: str, mil_op: str):
    def logical(ctx, self, other):
        return ctx.b.op(mil_op, x=to_bool(ctx, self), y=to_bool(ctx, other))

    logical.__name__ = name
    logical.__doc__ = f"{name}(Tensor self, Tensor other) -> Tensor"
    return logical


def _bitwise(name: str, mil_op: str):
    def bitwise(ctx, self, other):
        if ctx.result_dtype(self, other) is not dt.bool_:
            from . import bits  # integers: MIL has no bitwise ops, bits.py emulates them arithmetically
            return bits.bitwise(ctx, name[len("bitwise_"):], self, other)
        return ctx.b.op(mil_op, x=to_bool(ctx, self), y=to_bool(ctx, other))

    bitwise.__name__ = name
    bitwise.__doc__ = f"{name}.Tensor(Tensor self, Tensor other) -> Tensor"
    return bitwise


for _name, _mil_op in (("and", "logical_and"), ("or", "logical_or"), ("xor", "logical_xor")):
    lowering(getattr(aten, f"logical_{_name}").default)(_logical(f"logical_{_name}", _mil_op))
    _packet = getattr(aten, f"bitwise_{_name}")
    lowering(_packet.Tensor, _packet.Scalar)(_bitwise(f"bitwise_{_name}", _mil_op))


@lowering(aten.logical_not.default)
def logical_not(ctx, self):
    """logical_not(Tensor self) -> Tensor"""
    return ctx.b.op("logical_not", x=to_bool(ctx, self))


@lowering(aten.bitwise_not.default)
def bitwise_not(ctx, self):
    """bitwise_not(Tensor self) -> Tensor"""
    if self.dtype is not dt.bool_:
        from . import bits
        return bits.bitwise_not_int(ctx, self)
    return ctx.b.op("logical_not", x=self)


# -- selection -------------------------------------------------------------------------------------

@lowering(aten.where.self)
def where(ctx, condition, self, other):
    """where.self(Tensor condition, Tensor self, Tensor other) -> Tensor"""
    return select(ctx, to_bool(ctx, condition), self, other)
