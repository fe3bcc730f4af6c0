"""Elementwise binary MIL ops: arithmetic, comparisons and logical connectives.

Every op here takes `x` and `y` of one shared dtype (type variable T) and broadcasts them with numpy
rules. Arithmetic ops return T; comparisons and the logical ops return bool. None of them changed
after iOS15.

Integer semantics follow numpy, which is what the Core ML tool chain's constant folding uses:
`floor_div` rounds toward negative infinity, `mod` takes the sign of the divisor, an integer division
by zero gives 0, and `real_div` on int32 truncates the true quotient toward zero.
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..targets import Target
from .infer import broadcast
from .spec import In, mil_op

_NUMERIC = {"T": (dt.fp16, dt.fp32, dt.int32)}
_LOGICAL = {"T": (dt.bool_,)}
_INPUTS = (In("x", "T"), In("y", "T"))


def _binary(name: str, *, domains=None, out: dt.DType | None = None):
    """Register a kernel `(x, y) -> tensor` as a broadcasting binary op with the shared x/y inputs."""
    return mil_op(name, since=Target.iOS15, inputs=_INPUTS, domains=domains or _NUMERIC,
                  infer=broadcast("x", "y", dtype=out))


def _int_safe(x: torch.Tensor, y: torch.Tensor, fn):
    """Apply an integer division-like `fn`, giving 0 where the divisor is 0 (torch would raise)."""
    if y.is_floating_point():
        return fn(x, y)
    zero = y == 0
    if not bool(zero.any()):
        return fn(x, y)
    return torch.where(zero, torch.zeros((), dtype=x.dtype), fn(x, torch.where(zero, 1, y)))


# -- arithmetic ----------------------------------------------------------------------------------

@_binary("add")
def add(x, y):
    """x + y."""
    return torch.add(x, y)


@_binary("sub")
def sub(x, y):
    """x - y."""
    return torch.sub(x, y)


@_binary("mul")
def mul(x, y):
    """x * y."""
    return torch.mul(x, y)


@_binary("real_div")
def real_div(x, y):
    """True division x / y. On int32 the quotient is computed exactly and truncated toward zero."""
    if x.is_floating_point():
        return torch.div(x, y)
    return torch.trunc(torch.div(x.double(), y.double())).to(x.dtype)


@_binary("floor_div")
def floor_div(x, y):
    """x / y rounded toward negative infinity (Python's //)."""
    return _int_safe(x, y, torch.floor_divide)


@_binary("mod")
def mod(x, y):
    """Remainder of floor division: x - floor(x / y) * y, so the result has the sign of y."""
    return _int_safe(x, y, torch.remainder)


@_binary("pow")
def pow_(x, y):
    """x raised to the power y."""
    return torch.pow(x, y)


@_binary("maximum")
def maximum(x, y):
    """The larger of x and y (NaN if either is NaN)."""
    return torch.maximum(x, y)


@_binary("minimum")
def minimum(x, y):
    """The smaller of x and y (NaN if either is NaN)."""
    return torch.minimum(x, y)


# -- comparisons (bool result) -------------------------------------------------------------------

@_binary("equal", out=dt.bool_)
def equal(x, y):
    """x == y, as bool."""
    return torch.eq(x, y)


@_binary("not_equal", out=dt.bool_)
def not_equal(x, y):
    """x != y, as bool."""
    return torch.ne(x, y)


@_binary("greater", out=dt.bool_)
def greater(x, y):
    """x > y, as bool."""
    return torch.gt(x, y)


@_binary("greater_equal", out=dt.bool_)
def greater_equal(x, y):
    """x >= y, as bool."""
    return torch.ge(x, y)


@_binary("less", out=dt.bool_)
def less(x, y):
    """x < y, as bool."""
    return torch.lt(x, y)


@_binary("less_equal", out=dt.bool_)
def less_equal(x, y):
    """x <= y, as bool."""
    return torch.le(x, y)


# -- logical connectives on bool tensors ---------------------------------------------------------

@_binary("logical_and", domains=_LOGICAL, out=dt.bool_)
def logical_and(x, y):
    """x AND y on bool tensors."""
    return torch.logical_and(x, y)


@_binary("logical_or", domains=_LOGICAL, out=dt.bool_)
def logical_or(x, y):
    """x OR y on bool tensors."""
    return torch.logical_or(x, y)


@_binary("logical_xor", domains=_LOGICAL, out=dt.bool_)
def logical_xor(x, y):
    """x XOR y on bool tensors: true where exactly one of them is true."""
    return torch.logical_xor(x, y)
