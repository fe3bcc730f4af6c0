"""Elementwise unary MIL ops: math functions, rounding, clip/threshold, cast and logical_not.

Each op keeps the shape of `x`; all but `cast` also keep its dtype. Most take fp16/fp32 only; abs,
exp2, sign, square and threshold also take int32.

iOS17 changed four ops: `cast` gained the 8/16-bit integer types, `clip` rejects alpha >= beta, and the
`epsilon` of `inverse`, `log` and `rsqrt` may have a dtype other than x's (type variable U). Mixed
dtypes are computed in the wider of the two, and the result has x's dtype.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .infer import same_as
from .spec import In, mil_op

_FLOAT = {"T": dt.FLOATS}
_FLOAT_INT = {"T": (dt.fp16, dt.fp32, dt.int32)}
_FLOAT_EPS17 = {"T": dt.FLOATS, "U": dt.FLOATS}


def _unary(name: str, domains=_FLOAT):
    """Register a kernel `x -> tensor` as a shape- and dtype-preserving op with one input `x`."""
    return mil_op(name, since=Target.iOS15, inputs=[In("x", "T")], domains=domains,
                  infer=same_as("x"))


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """Integers go through float64 for functions that are only defined on floats."""
    return x if x.is_floating_point() else x.double()


# -- math functions ------------------------------------------------------------------------------

@_unary("abs", _FLOAT_INT)
def abs_(x):
    """Absolute value."""
    return torch.abs(x)


@_unary("acos")
def acos(x):
    """Inverse cosine (NaN outside [-1, 1])."""
    return torch.acos(x)


@_unary("asin")
def asin(x):
    """Inverse sine (NaN outside [-1, 1])."""
    return torch.asin(x)


@_unary("atan")
def atan(x):
    """Inverse tangent."""
    return torch.atan(x)


@_unary("atanh")
def atanh(x):
    """Inverse hyperbolic tangent (infinite at +-1, NaN beyond)."""
    return torch.atanh(x)


@_unary("cos")
def cos(x):
    """Cosine of x in radians."""
    return torch.cos(x)


@_unary("cosh")
def cosh(x):
    """Hyperbolic cosine."""
    return torch.cosh(x)


@_unary("erf")
def erf(x):
    """The Gauss error function."""
    return torch.erf(x)


@_unary("exp")
def exp(x):
    """e to the power x."""
    return torch.exp(x)


@_unary("exp2", _FLOAT_INT)
def exp2(x):
    """2 to the power x. On int32 negative exponents give fractions, which truncate to 0."""
    if x.is_floating_point():
        return torch.exp2(x)
    return torch.trunc(torch.exp2(x.double())).to(x.dtype)


@_unary("sin")
def sin(x):
    """Sine of x in radians."""
    return torch.sin(x)


@_unary("sinh")
def sinh(x):
    """Hyperbolic sine."""
    return torch.sinh(x)


@_unary("sqrt")
def sqrt(x):
    """Square root (NaN for negative x), correctly rounded: computed in float64, because torch's
    vectorized float32 kernel is sometimes one ulp off, which phases of large arguments magnify."""
    return torch.sqrt(x.double()).to(x.dtype) if x.dtype in (torch.float32, torch.float16) else torch.sqrt(x)


@_unary("square", _FLOAT_INT)
def square(x):
    """x * x."""
    return x * x


@_unary("tan")
def tan(x):
    """Tangent of x in radians."""
    return torch.tan(x)


@_unary("tanh")
def tanh(x):
    """Hyperbolic tangent, in (-1, 1)."""
    return torch.tanh(x)


@_unary("sign", _FLOAT_INT)
def sign(x):
    """-1 for negative x, 1 for positive x, 0 for zero."""
    return torch.sign(x)


# -- rounding ------------------------------------------------------------------------------------

@_unary("ceil")
def ceil(x):
    """Round up to the nearest integer value."""
    return torch.ceil(x)


@_unary("floor")
def floor(x):
    """Round down to the nearest integer value."""
    return torch.floor(x)


@_unary("round")
def round_(x):
    """Round to the nearest integer value; exact halves go to the even neighbour (0.5 -> 0, 1.5 -> 2)."""
    return torch.round(x)


# -- ops with an epsilon: y = f(x + epsilon) -----------------------------------------------------

def _epsilon_default(value: float):
    """The default epsilon is `value` held in x's dtype (so a tiny value may round to 0 in fp16)."""
    return lambda ctx: np.asarray(value, dtype=ctx.dtype("x").numpy)


def _plus_epsilon(x: torch.Tensor, epsilon) -> torch.Tensor:
    eps = torch.as_tensor(epsilon)
    wide = torch.promote_types(x.dtype, eps.dtype)
    return x.to(wide) + eps.to(wide)


def _epsilon_op(name: str, default: float):
    """Register a kernel under `name` for iOS15 (epsilon shares x's dtype) and iOS17 (its own U)."""

    def register(kernel):
        for since, eps_type, domains in ((Target.iOS15, "T", _FLOAT), (Target.iOS17, "U", _FLOAT_EPS17)):
            mil_op(name, since=since, domains=domains, infer=same_as("x"),
                   inputs=[In("x", "T"),
                           In("epsilon", eps_type, const=True, optional=True,
                              default=_epsilon_default(default))])(kernel)
        return kernel

    return register


@_epsilon_op("inverse", 1e-4)
def inverse(x, epsilon):
    """Reciprocal 1 / (x + epsilon); epsilon (default 1e-4) keeps x = 0 finite."""
    return torch.reciprocal(_plus_epsilon(x, epsilon))


@_epsilon_op("log", 1e-45)
def log(x, epsilon):
    """Natural logarithm log(x + epsilon); epsilon defaults to 1e-45 (0 once rounded to fp16)."""
    return torch.log(_plus_epsilon(x, epsilon))


@_epsilon_op("rsqrt", 1e-12)
def rsqrt(x, epsilon):
    """Reciprocal square root 1 / sqrt(x + epsilon); epsilon defaults to 1e-12."""
    return torch.rsqrt(_plus_epsilon(x, epsilon))


# -- bounds --------------------------------------------------------------------------------------

def _infer_clip_strict(ctx):
    alpha, beta = ctx.value("alpha"), ctx.value("beta")
    if np.any(np.asarray(alpha) >= np.asarray(beta)):
        raise ctx.error(f"input 'alpha' ({alpha}) must be smaller than input 'beta' ({beta})")
    return ctx.type("x")


_CLIP_INPUTS = [In("x", "T"), In("alpha", "T", const=True), In("beta", "T", const=True)]


@mil_op("clip", since=Target.iOS17, inputs=_CLIP_INPUTS, domains=_FLOAT, infer=_infer_clip_strict)
@mil_op("clip", since=Target.iOS15, inputs=_CLIP_INPUTS, domains=_FLOAT, infer=same_as("x"))
def clip(x, alpha, beta):
    """Limit x to [alpha, beta]: min(max(x, alpha), beta). From iOS17 alpha must be below beta."""
    return torch.minimum(torch.maximum(x, alpha), beta)


@mil_op("threshold", since=Target.iOS15, domains=_FLOAT_INT, infer=same_as("x"),
        inputs=[In("x", "T"), In("alpha", "T", const=True)])
def threshold(x, alpha):
    """Lower bound: max(x, alpha)."""
    return torch.maximum(x, alpha)


# -- logic and type conversion -------------------------------------------------------------------

@mil_op("logical_not", since=Target.iOS15, inputs=[In("x", (dt.bool_,))], infer=same_as("x"))
def logical_not(x):
    """NOT x on a bool tensor."""
    return torch.logical_not(x)


_CAST_IOS15 = (dt.fp16, dt.fp32, dt.int32, dt.bool_)
_CAST_IOS17 = (dt.fp16, dt.fp32, dt.int8, dt.uint8, dt.int16, dt.uint16, dt.int32, dt.bool_)


def _infer_cast(ctx):
    name = ctx.value("dtype")
    allowed = ctx.spec.domains["T"]
    if name not in [d.name for d in allowed]:
        raise ctx.error(f"input 'dtype' is {name!r}, expected one of {[d.name for d in allowed]} "
                        f"(opset {ctx.target.opset})")
    return TensorType(dt.from_name(name), ctx.shape("x"))


def _cast_inputs():
    return [In("x", "T"), In("dtype", (dt.string,), const=True)]


@mil_op("cast", since=Target.iOS17, inputs=_cast_inputs(), domains={"T": _CAST_IOS17}, infer=_infer_cast)
@mil_op("cast", since=Target.iOS15, inputs=_cast_inputs(), domains={"T": _CAST_IOS15}, infer=_infer_cast)
def cast(x, dtype):
    """Convert x to the dtype named by the string `dtype` ("fp16", "int32", "bool", ...).

    To bool: nonzero is true. Float to integer truncates toward zero; values outside the integer
    type's range wrap around (two's complement), as numpy's astype does on common hardware.
    """
    target = dt.from_name(dtype)
    if target is dt.bool_:
        return x != 0
    if target.is_float:
        return x.to(target.torch)
    wide = torch.trunc(x.double()).to(torch.int64) if x.is_floating_point() else x.to(torch.int64)
    span = 1 << target.bits
    wrapped = torch.remainder(wide, span)
    if target.kind == "int":
        wrapped = torch.where(wrapped >= span // 2, wrapped - span, wrapped)
    return wrapped.to(target.torch)
