"""Orthogonal polynomials of torch.special: P_n(x) with a per-element degree n (a tensor or a scalar).

torch evaluates every element on its own, in this order: the degree is n truncated toward zero (a
non-finite n counts as negative), then exact special cases (n < 0 gives 0, values at x = +-1, ...),
then for the Chebyshev families a trigonometric closed form for large n inside (-1, 1), and otherwise
the three-term recurrence up to n, which stops early once the value is NaN. The lowerings below take
the same branches with `select`s and run the recurrence in the same float operation order, so each
element gets torch's rounding, not merely the mathematically equal value. (One deliberate
difference: for x = NaN and n >= 2 torch returns an uninitialized variable; here the result is NaN.)

The recurrence length is data dependent. When n is known at conversion time and small it is
unrolled; otherwise it is a MIL `while_loop` that runs until no element still needs a step (its own
degree reached, or its value NaN, as in torch), with finished elements frozen by `select`. Degrees
are kept in fp32 and the step counter in int32 even in an fp16 program, where 2049 rounds to 2048.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ...mil.types import broadcast_shapes
from ..registry import lowering
from .elementwise import binary, select, trunc_float
from .scan import in_block

aten = torch.ops.aten

# A degree known at conversion time up to this many steps is unrolled; anything longer loops.
_UNROLL_STEPS = 32
# The int32 step counter's ceiling. A larger degree still gets its special cases and parity right
# (they read the fp32 degree), only its recurrence stops here; a loop that long runs for minutes, in
# torch as well.
_MAX_DEGREE = 2**30
# torch returns NaN for Hermite degrees above this (its float32 limit: the values overflow anyway).
_HERMITE_LIMIT = 128


@dataclass(frozen=True)
class _Operands:
    x: Var              # the program's float type, broadcast with n
    n: Var              # fp32 degree: truncated toward zero, -1 where n was NaN or infinite
    deg: Var            # the same degree as an int32 counter bound, clipped to _MAX_DEGREE
    known: np.ndarray | None   # n's values when they are known at conversion time

    def n_float(self, ctx) -> Var:
        return ctx.cast(self.n, ctx.float_dtype)


def _ones_like(ctx, v: Var, dtype: dt.DType) -> Var:
    # v < v is false everywhere, NaN included, so this is exactly 1 in v's shape.
    return ctx.cast(ctx.b.op("logical_not", x=ctx.b.op("less", x=v, y=v)), dtype)


def _operands(ctx, x, n) -> _Operands:
    """x in float and the truncated degree, broadcast to one shape (the loop carries that shape)."""
    if isinstance(x, Var):
        xv = ctx.cast(x, ctx.float_dtype)
    else:
        xv = ctx.const(np.asarray(float(x), ctx.float_dtype.numpy), ctx.float_dtype)
    known = None
    if isinstance(n, Var):
        if n.is_const:
            known = np.asarray(n.value, np.float64)
        nv = ctx.cast(n, dt.fp32)
    else:
        known = np.asarray(float(n))
        nv = ctx.const(np.asarray(float(n), np.float32), dt.fp32)
    # torch converts n to x's float type and then to int64 (toward zero); NaN and inf become
    # INT64_MIN there, i.e. a negative degree.
    t = trunc_float(ctx, nv)
    finite = binary(ctx, "equal", ctx.b.op("sub", x=t, y=t), 0.0)
    nf = select(ctx, finite, t, -1.0)
    full = broadcast_shapes(tuple(xv.shape), tuple(nf.shape))
    # Multiplying by ones broadcasts and keeps every value exactly (-0.0, inf and NaN too).
    if tuple(xv.shape) != full:
        xv = ctx.b.op("mul", x=xv, y=_ones_like(ctx, nf, xv.dtype))
    if tuple(nf.shape) != full:
        nf = ctx.b.op("mul", x=nf, y=_ones_like(ctx, xv, dt.fp32))
    deg = ctx.cast(ctx.b.op("clip", x=nf, alpha=-1.0, beta=float(_MAX_DEGREE)), dt.int32)
    return _Operands(xv, nf, deg, known)


def _known_steps(known: np.ndarray, limit: int | None) -> int:
    with np.errstate(invalid="ignore"):
        degrees = np.trunc(known[np.isfinite(known)])
    top = int(min(degrees.max(initial=0), limit or _MAX_DEGREE, _MAX_DEGREE))
    return max(top, 1)


def _recurrence(ctx, a: _Operands, needed: Var, first: Callable, step: Callable,
                limit: int | None = None) -> Var:
    """P_deg(x) by the three-term recurrence where `needed` (deg >= 2 assumed there), P_0 = 1
    where deg == 0, and P_1 elsewhere (other elements are replaced by the caller's special cases).

    `first(ctx, x)` is P_1; `step(ctx, j, x, p, q)` gives P_{j+1} from q = P_j and p = P_{j-1},
    with j a float tensor, the loop index torch's own recurrence multiplies by."""
    x = a.x
    p = _ones_like(ctx, x, x.dtype)
    q = first(ctx, x)
    bound = select(ctx, needed, a.deg, 0)
    steps = _known_steps(a.known, limit) if a.known is not None else None
    if steps is not None and steps <= _UNROLL_STEPS:
        for k in range(2, steps + 1):
            j = ctx.const(np.asarray(k - 1, ctx.float_dtype.numpy), ctx.float_dtype)
            r = step(ctx, j, x, p, q)
            if a.known.size == 1:  # every element has this degree: nothing to freeze
                p, q = q, r
            else:
                active = binary(ctx, "less_equal", k, bound)
                p, q = ctx.b.op("select", cond=active, a=q, b=p), ctx.b.op("select", cond=active, a=r, b=q)
    else:
        q = _loop(ctx, bound, x, p, q, step)
    return select(ctx, binary(ctx, "equal", a.deg, 0), 1.0, q)


def _loop(ctx, bound: Var, x: Var, p: Var, q: Var, step: Callable) -> Var:
    def keep_going(b, loop_vars):
        k, _, q_k = loop_vars
        inner = in_block(ctx, b)
        # Like torch, an element whose value is already NaN needs no more steps.
        live = inner.b.op("select", cond=binary(inner, "equal", q_k, q_k), a=bound, b=np.int32(-1))
        furthest = inner.b.op("reduce_max", x=live, keep_dims=False)
        return inner.b.op("less_equal", x=k, y=furthest)

    def one_step(b, loop_vars):
        k, p_k, q_k = loop_vars
        inner = in_block(ctx, b)
        j = inner.cast(binary(inner, "sub", k, 1), ctx.float_dtype)
        r = step(inner, j, x, p_k, q_k)
        active = inner.b.op("less_equal", x=k, y=bound)
        return [inner.b.op("add", x=k, y=np.int32(1)),
                inner.b.op("select", cond=active, a=q_k, b=p_k),
                inner.b.op("select", cond=active, a=r, b=q_k)]

    start = ctx.const(np.int32(2), dt.int32)
    _, _, q = ctx.b.while_loop([start, p, q], keep_going, one_step)
    return q


def _parity_sign(ctx, a: _Operands) -> Var:
    """+1 for an even degree, -1 for an odd one (fp32 degrees are exact integers, so mod 2 is too)."""
    even = binary(ctx, "equal", binary(ctx, "mod", a.n, 2.0), 0.0)
    return select(ctx, even, 1.0, -1.0)


def _needs_steps(ctx, a: _Operands, settled: Var) -> Var:
    """Where the recurrence has to run: degree 2 or more and no special case `settled` the value."""
    high_enough = binary(ctx, "greater_equal", a.deg, 2)
    return ctx.b.op("logical_and", x=high_enough, y=ctx.b.op("logical_not", x=settled))


def _finish(ctx, a: _Operands, value: Var, cases: list[tuple[Var, Var]]) -> Var:
    """Apply special cases, the first listed winning (torch checks them in that order); n < 0 → 0."""
    for cond, case_value in reversed(cases):
        value = select(ctx, cond, case_value, value)
    return select(ctx, binary(ctx, "less", a.n, 0.0), 0.0, value)


# -- Chebyshev polynomials of the first to fourth kind, plain and shifted to [0, 1] -----------------

@dataclass(frozen=True)
class _Chebyshev:
    kind: str            # "t", "u", "v" or "w"
    threshold: int       # the closed form is used for n above this, inside (-1, 1)
    shifted: bool

    def first(self, ctx, v):
        """P_1 in the variable v (x, or 2x - 1 when shifted)."""
        twice = ctx.b.op("add", x=v, y=v)
        return {"t": v, "u": twice, "v": binary(ctx, "sub", twice, 1.0),
                "w": binary(ctx, "add", twice, 1.0)}[self.kind]

    @staticmethod
    def step(ctx, j, v, p, q):
        return ctx.b.op("sub", x=ctx.b.op("mul", x=ctx.b.op("add", x=v, y=v), y=q), y=p)

    def at_ends(self, ctx, a: _Operands) -> tuple[Var, Var]:
        """The exact values at v = 1 and v = -1."""
        n = a.n_float(ctx)
        n_plus_1 = binary(ctx, "add", n, 1.0)
        two_n_plus_1 = binary(ctx, "add", ctx.b.op("add", x=n, y=n), 1.0)
        one = ctx.const(np.asarray(1.0, ctx.float_dtype.numpy), ctx.float_dtype)
        at_one = {"t": one, "u": n_plus_1, "v": one, "w": two_n_plus_1}[self.kind]
        magnitude = {"t": one, "u": n_plus_1, "v": two_n_plus_1, "w": one}[self.kind]
        return at_one, ctx.b.op("mul", x=_parity_sign(ctx, a), y=magnitude)

    def closed_form(self, ctx, a: _Operands, v, at_one, at_minus_one) -> Var:
        n = a.n_float(ctx)
        theta = ctx.b.op("acos", x=v)
        if self.kind == "t":
            return ctx.b.op("cos", x=ctx.b.op("mul", x=n, y=theta))
        if self.kind == "u":
            n1_theta = ctx.b.op("mul", x=binary(ctx, "add", n, 1.0), y=theta)
            sin_theta = ctx.b.op("sin", x=theta)
            ratio = ctx.b.op("real_div", x=ctx.b.op("sin", x=n1_theta), y=sin_theta)
            # sin(theta) == 0: the limit, as torch writes it.
            limit = ctx.b.op("real_div", x=ctx.b.op("mul", x=binary(ctx, "add", n, 1.0),
                                                     y=ctx.b.op("cos", x=n1_theta)), y=v)
            return select(ctx, binary(ctx, "not_equal", sin_theta, 0.0), ratio, limit)
        half = binary(ctx, "real_div", theta, 2.0)
        nh_theta = ctx.b.op("mul", x=binary(ctx, "add", n, 0.5), y=theta)
        if self.kind == "v":
            ratio = ctx.b.op("real_div", x=ctx.b.op("cos", x=nh_theta), y=ctx.b.op("cos", x=half))
            regular = binary(ctx, "not_equal", ctx.b.op("sin", x=half), 1.0)
            return select(ctx, regular, ratio, at_minus_one)
        ratio = ctx.b.op("real_div", x=ctx.b.op("sin", x=nh_theta), y=ctx.b.op("sin", x=half))
        regular = binary(ctx, "not_equal", ctx.b.op("cos", x=half), 1.0)
        # Where cos(theta / 2) rounds to 1 (v just below 1) torch's plain W gives its value at 1, but
        # its shifted W gives the value at -1; both are kept as torch has them.
        degenerate = at_minus_one if self.shifted else \
            select(ctx, binary(ctx, "greater", v, 0.0), at_one, at_minus_one)
        return select(ctx, regular, ratio, degenerate)

    def __call__(self, ctx, x, n):
        a = _operands(ctx, x, n)
        # Shifted: torch evaluates the plain recurrence in 2x - 1, but tests the ends on x itself.
        v = binary(ctx, "sub", ctx.b.op("add", x=a.x, y=a.x), 1.0) if self.shifted else a.x
        at_plus = binary(ctx, "equal", a.x, 1.0)
        at_minus = binary(ctx, "equal", a.x, 0.0 if self.shifted else -1.0)
        inside = binary(ctx, "less", ctx.b.op("abs", x=v), 1.0)
        closed = ctx.b.op("logical_and", x=binary(ctx, "greater", a.n, float(self.threshold)), y=inside)
        settled = ctx.b.op("logical_or", x=ctx.b.op("logical_or", x=at_plus, y=at_minus), y=closed)
        needed = _needs_steps(ctx, a, settled)
        at_one, at_minus_one = self.at_ends(ctx, a)
        value = _recurrence(ctx, _Operands(v, a.n, a.deg, a.known), needed, self.first, self.step)
        return _finish(ctx, a, value, [(at_plus, at_one), (at_minus, at_minus_one),
                                       (closed, self.closed_form(ctx, a, v, at_one, at_minus_one))])


_CHEBYSHEV = {
    "chebyshev_polynomial_t": _Chebyshev("t", 6, False),
    "chebyshev_polynomial_u": _Chebyshev("u", 8, False),
    "chebyshev_polynomial_v": _Chebyshev("v", 8, False),
    "chebyshev_polynomial_w": _Chebyshev("w", 8, False),
    "shifted_chebyshev_polynomial_t": _Chebyshev("t", 6, True),
    "shifted_chebyshev_polynomial_u": _Chebyshev("u", 6, True),
    "shifted_chebyshev_polynomial_v": _Chebyshev("v", 6, True),
    "shifted_chebyshev_polynomial_w": _Chebyshev("w", 4, True),
}


# -- Hermite, Laguerre and Legendre --------------------------------------------------------------

def _hermite_h_step(ctx, j, x, p, q):
    # H_{j+1} = 2x H_j - 2j H_{j-1}
    return ctx.b.op("sub", x=ctx.b.op("mul", x=ctx.b.op("add", x=x, y=x), y=q),
                    y=ctx.b.op("mul", x=ctx.b.op("add", x=j, y=j), y=p))


def _hermite_he_step(ctx, j, x, p, q):
    # He_{j+1} = x He_j - j He_{j-1}
    return ctx.b.op("sub", x=ctx.b.op("mul", x=x, y=q), y=ctx.b.op("mul", x=j, y=p))


def _laguerre_step(ctx, j, x, p, q):
    # (j + 1) L_{j+1} = (2j + 1 - x) L_j - j L_{j-1}
    slope = ctx.b.op("add", x=ctx.b.op("add", x=j, y=j), y=binary(ctx, "sub", 1.0, x))
    top = ctx.b.op("sub", x=ctx.b.op("mul", x=slope, y=q), y=ctx.b.op("mul", x=j, y=p))
    return ctx.b.op("real_div", x=top, y=binary(ctx, "add", j, 1.0))


def _legendre_step(ctx, j, x, p, q):
    # (j + 1) P_{j+1} = (2j + 1) x P_j - j P_{j-1}
    odd = binary(ctx, "add", ctx.b.op("add", x=j, y=j), 1.0)
    top = ctx.b.op("sub", x=ctx.b.op("mul", x=ctx.b.op("mul", x=odd, y=x), y=q),
                   y=ctx.b.op("mul", x=j, y=p))
    return ctx.b.op("real_div", x=top, y=binary(ctx, "add", j, 1.0))


def _hermite(first: Callable, step: Callable):
    def evaluate(ctx, x, n):
        a = _operands(ctx, x, n)
        too_high = binary(ctx, "greater", a.n, float(_HERMITE_LIMIT))
        value = _recurrence(ctx, a, _needs_steps(ctx, a, too_high), first, step, limit=_HERMITE_LIMIT)
        return _finish(ctx, a, value, [(too_high, math.nan)])
    return evaluate


def _laguerre(ctx, x, n):
    a = _operands(ctx, x, n)
    at_zero = binary(ctx, "equal", a.x, 0.0)
    first = lambda c, x: binary(c, "sub", 1.0, x)  # noqa: E731
    value = _recurrence(ctx, a, _needs_steps(ctx, a, at_zero), first, _laguerre_step)
    return _finish(ctx, a, value, [(at_zero, 1.0)])


def _legendre(ctx, x, n):
    a = _operands(ctx, x, n)
    ends = binary(ctx, "equal", ctx.b.op("abs", x=a.x), 1.0)
    value = _recurrence(ctx, a, _needs_steps(ctx, a, ends), lambda c, x: x, _legendre_step)
    # P_n(1) = 1 and P_n(-1) = (-1)^n.
    sign = select(ctx, binary(ctx, "greater", a.x, 0.0), 1.0, _parity_sign(ctx, a))
    return _finish(ctx, a, value, [(ends, sign)])


_OTHERS = {
    "hermite_polynomial_h": _hermite(lambda c, x: c.b.op("add", x=x, y=x), _hermite_h_step),
    "hermite_polynomial_he": _hermite(lambda c, x: x, _hermite_he_step),
    "laguerre_polynomial_l": _laguerre,
    "legendre_polynomial_p": _legendre,
}


def _register(name: str, evaluate: Callable) -> None:
    packet = getattr(aten, f"special_{name}")

    def polynomial(ctx, x, n):
        return evaluate(ctx, x, n)

    polynomial.__name__ = name
    polynomial.__doc__ = f"special_{name}(Tensor x, Tensor n) -> Tensor (also x or n a Scalar)"
    lowering(packet.default, packet.x_scalar, packet.n_scalar)(polynomial)


for _name, _evaluate in {**_CHEBYSHEV, **_OTHERS}.items():
    _register(_name, _evaluate)
