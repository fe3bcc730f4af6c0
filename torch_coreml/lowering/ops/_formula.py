"""Formulas over MIL tensors written as Python arithmetic, for the special-function lowerings.

    @special(aten.i0.default)
    def i0(x: F) -> F:
        return where(x.abs() < 8.0, horner(x * x, SMALL), x.abs().exp() * ...)

`F` wraps an fp32 (or bool) Var; its operators and methods emit MIL ops left to right, so a formula
rounds as the float32 C code it follows. Scalar constants are fp32 in fp16 programs too (special
functions leave fp16's range in their intermediates) and made once per value and node.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from .elementwise import binary, select


class F:
    """An fp32 (or bool) tensor inside a formula; Python operators emit MIL ops, left to right."""

    __slots__ = ("ctx", "v", "_unaries")

    def __init__(self, ctx, v: Var):
        self.ctx, self.v, self._unaries = ctx, v, {}

    def _binary(self, mil_op: str, other, swapped: bool = False) -> "F":
        other = other.v if isinstance(other, F) else const32(self.ctx, other)
        a, b = (other, self.v) if swapped else (self.v, other)
        return F(self.ctx, binary(self.ctx, mil_op, a, b))

    def __add__(self, o): return self._binary("add", o)
    def __radd__(self, o): return self._binary("add", o, True)
    def __sub__(self, o): return self._binary("sub", o)
    def __rsub__(self, o): return self._binary("sub", o, True)
    def __mul__(self, o): return self._binary("mul", o)
    def __rmul__(self, o): return self._binary("mul", o, True)
    def __truediv__(self, o): return self._binary("real_div", o)
    def __rtruediv__(self, o): return self._binary("real_div", o, True)
    def __pow__(self, o): return self._binary("pow", o)
    def __neg__(self): return self._binary("mul", -1.0)
    def __lt__(self, o): return self._binary("less", o)
    def __le__(self, o): return self._binary("less_equal", o)
    def __gt__(self, o): return self._binary("greater", o)
    def __ge__(self, o): return self._binary("greater_equal", o)
    def __and__(self, o): return self._binary("logical_and", o)
    def __or__(self, o): return self._binary("logical_or", o)
    def __invert__(self): return self._unary("logical_not")

    def eq(self, o) -> "F":
        return self._binary("equal", o)

    def _unary(self, mil_op: str, **extra) -> "F":
        # Emitted once per value however often a formula asks for it (exp(x) in several pieces, ...).
        if mil_op not in self._unaries:
            self._unaries[mil_op] = F(self.ctx, self.ctx.b.op(mil_op, x=self.v, **extra))
        return self._unaries[mil_op]

    def abs(self): return self._unary("abs")
    def exp(self): return self._unary("exp")
    def sqrt(self): return self._unary("sqrt")
    def sin(self): return self._unary("sin")
    def cos(self): return self._unary("cos")
    def tan(self): return self._unary("tan")
    def erf(self): return self._unary("erf")
    def floor(self): return self._unary("floor")
    def ceil(self): return self._unary("ceil")
    def round(self): return self._unary("round")
    def log(self): return self._unary("log", epsilon=0.0)  # MIL's default epsilon would shift log(x)

    def log1p(self) -> "F":
        """log(1 + x), accurate near 0: log(u) * x / (u - 1) with u = 1 + x cancels u's rounding."""
        u = self + 1.0
        d = u - 1.0
        return where(d.eq(0.0), self, where(self.abs() < 1.0, u.log() * (self / d), u.log()))

    def clip(self, low: float, high: float) -> "F":
        return self._unary("clip", alpha=low, beta=high)

    def expm1(self) -> "F":
        """exp(x) - 1, accurate near 0: (u - 1) * x / log(u) with u = exp(x) cancels u's rounding."""
        u = self.exp()
        d = u - 1.0
        return where(u.eq(1.0), self, where(self.abs() < 1.0, d * (self / u.log()), d))

    def isinf(self) -> "F":
        return self.abs().eq(math.inf)

    def is_integer(self) -> "F":
        """True for integral values (and +-inf); false for NaN."""
        return self.eq(self.floor())


def where(cond: F, a, b) -> F:
    """a where cond, else b; a and b are F or Python floats (fp32 constants, in fp16 programs too)."""
    a, b = (v.v if isinstance(v, F) else const32(cond.ctx, v) for v in (a, b))
    return F(cond.ctx, select(cond.ctx, cond.v, a, b))


_CONSTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def const32(ctx, value: float) -> Var:
    """One fp32 scalar const per value and node: these formulas reuse 1.0, 0.5, ... hundreds of
    times, and each duplicate would only be merged again by CSE."""
    cache = _CONSTS.setdefault(ctx, {})
    key = np.float32(value).tobytes()
    if key not in cache:
        cache[key] = ctx.const(np.float32(value), dt.fp32)
    return cache[key]


def horner(z: F, coeffs) -> F:
    """coeffs[0] z^n + ... + coeffs[n] (highest power first, as Cephes' polevl)."""
    p = z * coeffs[0] + coeffs[1]
    for c in coeffs[2:]:
        p = p * z + c
    return p


def f32(value: float) -> float:
    """value rounded to float32, for constants torch forms in float arithmetic."""
    return float(np.float32(value))


def special(*targets):
    """Register `formula(x: F) -> F` as the lowering of unary `targets`, computing in fp32."""

    def register(formula):
        def lower(ctx, **tensor):
            (x,) = tensor.values()  # the schemas name it `self` or `x`
            return float_result(ctx, formula(fp32(ctx, x)))

        lower.__name__ = formula.__name__
        lower.__doc__ = formula.__doc__
        lowering(*targets)(lower)
        return formula

    return register


def fp32(ctx, x) -> F:
    """A tensor or Python scalar as an fp32 formula value."""
    if not isinstance(x, Var):
        return F(ctx, const32(ctx, x))
    return F(ctx, ctx.cast(x, dt.fp32))


def float_result(ctx, result: F) -> Var:
    return ctx.cast(result.v, ctx.float_dtype)
