"""Integer bitwise and shift ops, and the float bit-pattern functions frexp and nextafter.

MIL has no bitwise, shift or bitcast ops, so all of these are arithmetic on int32 (two's complement)
or on the program's float type, exact over the whole range and without relying on an intermediate
overflowing (only the final value of a left shift is the wrapped one, and it is assembled from parts
that fit):
- not(a) = -1 - a; a right shift by k is floor division by 2^k, which is the arithmetic shift.
- and/or/xor split a value into its sign bit and its low 31 bits (a non-negative int32). All 31 low
  bits are extracted at once along a new trailing axis (floor division by the powers of two, mod 2),
  multiplied, and summed back. or and xor then follow from and on disjoint bit sets, so no sum can
  exceed 2^31 - 1.
- A float's exponent is found by a binary search that multiplies by exact powers of two (a product
  with 2^s is exact whenever it is representable, subnormals included); the step sizes are chosen to
  fit the program's float type, so fp16 programs work too.

int64 tensors compute as int32 (the project's rule), so results are the low 32 bits of torch's.
Narrow torch types (int8, uint8, int16, uint16) compute in int32 and are wrapped back to their width.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from .elementwise import select

aten = torch.ops.aten

_INT_MIN = -2 ** 31
_POWERS = np.array([1 << k for k in range(31)], np.int32)  # 2^0 .. 2^30: every int32 power of two
_NARROW = {torch.int8: (8, True), torch.uint8: (8, False), torch.int16: (16, True),
           torch.uint16: (16, False)}


# -- int32 helpers ---------------------------------------------------------------------------------

def _i32(ctx, value) -> Var:
    return ctx.const(np.asarray(value, np.int32), dt.int32)


def _op(ctx, name: str, x, y) -> Var:
    return ctx.b.op(name, x=x, y=y)


def _flag(ctx, cond: Var) -> Var:
    """A bool tensor as int32 0/1, to scale a term instead of selecting between a const and a tensor."""
    return ctx.cast(cond, dt.int32)


def _int_operands(ctx, name: str, *values) -> list[Var]:
    """The operands promoted to int32 (torch's integer result), refusing what int32 cannot hold."""
    dtype = ctx.result_dtype(*values)
    if dtype.is_float:
        raise ctx.unsupported(f"{name} on floating-point values (torch refuses it too)")
    torch_dtype = _out_torch_dtype(ctx)
    if torch_dtype in (torch.uint32, torch.uint64):
        raise ctx.unsupported(f"{name} on {torch_dtype}: values at or above 2^31 do not fit MIL's int32")
    return ctx.promote(*values, dtype=dt.int32)


def _out_torch_dtype(ctx):
    val = ctx.node.meta.get("val") if ctx.node is not None else None
    return val.dtype if isinstance(val, torch.Tensor) else None


def _wrap(ctx, x: Var) -> Var:
    """x reduced to the width of the node's narrow integer type (int8 ... uint16); int32 otherwise."""
    width = _NARROW.get(_out_torch_dtype(ctx))
    if width is None:
        return x
    bits, signed = width
    low = _op(ctx, "mod", x, _i32(ctx, 1 << bits))  # in [0, 2^bits): the unsigned pattern
    if not signed:
        return low
    high = _op(ctx, "greater_equal", low, _i32(ctx, 1 << (bits - 1)))
    return _op(ctx, "sub", low, _op(ctx, "mul", _flag(ctx, high), _i32(ctx, 1 << bits)))


def _split(ctx, x: Var) -> tuple[Var, Var]:
    """(sign bit as bool, the low 31 bits as a non-negative int32): x - INT_MIN where x < 0."""
    negative = _op(ctx, "less", x, _i32(ctx, 0))
    return negative, _op(ctx, "sub", x, _op(ctx, "mul", _flag(ctx, negative), _i32(ctx, _INT_MIN)))


def _low_bits(ctx, low: Var) -> Var:
    """The 31 bits of a non-negative int32 as 0/1 along a new trailing axis (least significant first)."""
    expanded = ctx.b.op("expand_dims", x=low, axes=[-1])
    return _op(ctx, "mod", _op(ctx, "floor_div", expanded, _i32(ctx, _POWERS)), _i32(ctx, 2))


def _and_low(ctx, a_low: Var, b_low: Var) -> Var:
    both = _op(ctx, "mul", _low_bits(ctx, a_low), _low_bits(ctx, b_low))
    return ctx.b.op("reduce_sum", x=_op(ctx, "mul", both, _i32(ctx, _POWERS)), axes=[-1], keep_dims=False)


def _with_sign(ctx, low: Var, negative: Var) -> Var:
    """Put a sign bit back on 31 low bits: low + INT_MIN stays within int32 since low >= 0."""
    return _op(ctx, "add", low, _op(ctx, "mul", _flag(ctx, negative), _i32(ctx, _INT_MIN)))


def bitwise(ctx, kind: str, self, other) -> Var:
    """Integer `and` / `or` / `xor` of self and other (tensors or scalars) in int32."""
    a, b = _int_operands(ctx, f"bitwise_{kind}", self, other)
    (a_neg, a_low), (b_neg, b_low) = _split(ctx, a), _split(ctx, b)
    common = _and_low(ctx, a_low, b_low)
    only_a = _op(ctx, "sub", a_low, common)
    if kind == "and":
        low, sign = common, ctx.b.op("logical_and", x=a_neg, y=b_neg)
    elif kind == "or":
        low, sign = _op(ctx, "add", only_a, b_low), ctx.b.op("logical_or", x=a_neg, y=b_neg)
    else:
        low = _op(ctx, "add", only_a, _op(ctx, "sub", b_low, common))
        sign = ctx.b.op("logical_xor", x=a_neg, y=b_neg)
    return _with_sign(ctx, low, sign)


def bitwise_not_int(ctx, self: Var) -> Var:
    """Integer complement: -1 - a never overflows int32; unsigned types wrap to 2^bits - 1 - a."""
    (a,) = _int_operands(ctx, "bitwise_not", self)
    return _wrap(ctx, _op(ctx, "sub", _i32(ctx, -1), a))


def _shift_amount(ctx, k: Var, last: int) -> tuple[Var, Var]:
    """(k where it lies in [0, last] and 0 elsewhere, whether it lay outside)."""
    outside = ctx.b.op("logical_or", x=_op(ctx, "less", k, _i32(ctx, 0)),
                       y=_op(ctx, "greater", k, _i32(ctx, last)))
    return select(ctx, outside, _op(ctx, "mul", k, _i32(ctx, 0)), k), outside


def _power_of_two(ctx, k: Var) -> Var:
    """2^k for int32 k in [0, 30], read from a table (exact, unlike a float pow)."""
    return ctx.b.op("gather", x=_i32(ctx, _POWERS), indices=k, axis=0)


def right_shift(ctx, self, other) -> Var:
    """Arithmetic shift; torch fills with the sign bit when the shift is negative or too large."""
    x, k = _int_operands(ctx, "bitwise_right_shift", self, other)
    kc, outside = _shift_amount(ctx, k, 30)  # x >> 31 on int32 is the sign fill too
    negative = _op(ctx, "less", x, _i32(ctx, 0))
    fill = _op(ctx, "mul", _flag(ctx, negative), _i32(ctx, -1))
    shifted = _op(ctx, "floor_div", x, _power_of_two(ctx, kc))
    return select(ctx, outside, fill, shifted)


def left_shift(ctx, self, other) -> Var:
    """The low 32 bits of x * 2^k; torch gives 0 when the shift is negative or not below the width.

    For 1 <= k <= 31, x mod 2^(31-k) are the bits that stay below the sign (their product with 2^k
    fits), and bit 31-k of x becomes the sign bit."""
    x, k = _int_operands(ctx, "bitwise_left_shift", self, other)
    kc, outside = _shift_amount(ctx, k, 31)
    keep = _op(ctx, "sub", _i32(ctx, 31), kc)
    keep = _op(ctx, "minimum", keep, _i32(ctx, 30))  # k = 0 is answered by x itself below
    unit = _power_of_two(ctx, keep)
    below = _op(ctx, "mod", x, unit)
    top = _op(ctx, "mod", _op(ctx, "floor_div", x, unit), _i32(ctx, 2))
    shifted = _op(ctx, "mul", below, _power_of_two(ctx, _op(ctx, "minimum", kc, _i32(ctx, 30))))
    # k = 31: 2^31 is not an int32, but then `below` is x mod 1 = 0 and only the sign bit remains.
    shifted = _op(ctx, "add", shifted, _op(ctx, "mul", top, _i32(ctx, _INT_MIN)))
    shifted = select(ctx, _op(ctx, "equal", kc, _i32(ctx, 0)), x, shifted)
    zero = _op(ctx, "mul", shifted, _i32(ctx, 0))
    return _wrap(ctx, select(ctx, outside, zero, shifted))


@lowering(aten.bitwise_left_shift.Tensor, aten.bitwise_left_shift.Tensor_Scalar,
          aten.bitwise_left_shift.Scalar_Tensor, aten.__lshift__.Tensor, aten.__lshift__.Scalar)
def bitwise_left_shift(ctx, self, other):
    """bitwise_left_shift.Tensor(Tensor self, Tensor other) -> Tensor"""
    return left_shift(ctx, self, other)


@lowering(aten.bitwise_right_shift.Tensor, aten.bitwise_right_shift.Tensor_Scalar,
          aten.bitwise_right_shift.Scalar_Tensor, aten.__rshift__.Tensor, aten.__rshift__.Scalar)
def bitwise_right_shift(ctx, self, other):
    """bitwise_right_shift.Tensor(Tensor self, Tensor other) -> Tensor"""
    return right_shift(ctx, self, other)


# -- float exponents -------------------------------------------------------------------------------

def _fconst(ctx, value) -> Var:
    return ctx.const(np.asarray(value, ctx.float_dtype.numpy), ctx.float_dtype)


def _search_steps(ctx) -> tuple[list[int], list[int]]:
    """Power-of-two step sizes that reach every exponent of the float type with representable factors.

    Scaling down covers floor(log2) up to the largest exponent with one binary sweep (top, top/2 .. 1);
    scaling up must reach the smallest subnormal, which takes the top step more than once."""
    info = np.finfo(ctx.float_dtype.numpy)
    largest, smallest = int(info.maxexp) - 1, int(info.nmant) - int(info.minexp)  # 127, 149 in fp32
    top = 1 << (largest.bit_length() - 1)
    sweep = [top >> i for i in range(top.bit_length())]
    repeats = 1
    while repeats * top + top - 1 < smallest:
        repeats += 1
    return sweep, [top] * (repeats - 1) + sweep


def _normalize(ctx, magnitude: Var) -> tuple[Var, Var]:
    """(m, e) with magnitude = m * 2^e, m in [1, 2) and e an int32, for finite nonzero magnitudes.

    Each step multiplies by an exact power of two where the value is still out of range and counts it."""
    down, up = _search_steps(ctx)
    y = magnitude
    e = _op(ctx, "mul", _flag(ctx, _op(ctx, "equal", y, y)), _i32(ctx, 0))  # zeros shaped like y
    for s in down:
        hit = _op(ctx, "greater_equal", y, _fconst(ctx, 2.0 ** s))
        y = select(ctx, hit, _op(ctx, "mul", y, _fconst(ctx, 2.0 ** -s)), y)
        e = _op(ctx, "add", e, _op(ctx, "mul", _flag(ctx, hit), _i32(ctx, s)))
    for s in up:
        hit = _op(ctx, "less", y, _fconst(ctx, 2.0 ** (1 - s)))
        y = select(ctx, hit, _op(ctx, "mul", y, _fconst(ctx, 2.0 ** s)), y)
        e = _op(ctx, "sub", e, _op(ctx, "mul", _flag(ctx, hit), _i32(ctx, s)))
    return y, e


def _float_operands(ctx, name: str, *values) -> list[Var]:
    if not ctx.result_dtype(*values).is_float:
        raise ctx.unsupported(f"{name} on integer or bool values (torch accepts floats only)")
    return ctx.promote(*values, dtype=ctx.float_dtype)


def _finite_nonzero(ctx, x: Var) -> Var:
    finite = _op(ctx, "equal", _op(ctx, "sub", x, x), _fconst(ctx, 0.0))  # inf - inf and NaN give NaN
    return ctx.b.op("logical_and", x=finite, y=_op(ctx, "not_equal", x, _fconst(ctx, 0.0)))


@lowering(aten.frexp.Tensor)
def frexp(ctx, self):
    """frexp.Tensor(Tensor self) -> (Tensor mantissa, Tensor exponent)"""
    (x,) = _float_operands(ctx, "frexp", self)
    m, e = _normalize(ctx, ctx.b.op("abs", x=x))
    half = _op(ctx, "mul", m, _fconst(ctx, 0.5))
    signed = select(ctx, _op(ctx, "less", x, _fconst(ctx, 0.0)),
                    _op(ctx, "mul", half, _fconst(ctx, -1.0)), half)
    regular = _finite_nonzero(ctx, x)
    # torch: 0, inf and NaN keep their value with exponent 0.
    mantissa = select(ctx, regular, signed, x)
    exponent = _op(ctx, "mul", _op(ctx, "add", e, _i32(ctx, 1)), _flag(ctx, regular))
    return mantissa, exponent


@lowering(aten.nextafter.default)
def nextafter(ctx, self, other):
    """nextafter(Tensor self, Tensor other) -> Tensor

    The neighbour of self toward other in the program's float type (fp32 as torch; in an fp16
    program the fp16 neighbour). Floats in [2^e, 2^(e+1)) are 2^(e - mantissa bits) apart, half that
    just below a power of two, and never closer than the smallest subnormal."""
    x, y = _float_operands(ctx, "nextafter", self, other)
    info = np.finfo(ctx.float_dtype.numpy)
    tiny = float(info.smallest_subnormal)
    magnitude = ctx.b.op("abs", x=x)
    m, _ = _normalize(ctx, magnitude)
    # magnitude / (m * 2^nmant) is exactly 2^(e - nmant); where that underflows, the floor applies.
    spacing = _op(ctx, "real_div", magnitude, _op(ctx, "mul", m, _fconst(ctx, 2.0 ** int(info.nmant))))
    below = select(ctx, _op(ctx, "equal", m, _fconst(ctx, 1.0)),
                   _op(ctx, "mul", spacing, _fconst(ctx, 0.5)), spacing)
    away = ctx.b.op("logical_xor", x=_op(ctx, "greater", y, x), y=_op(ctx, "less", x, _fconst(ctx, 0.0)))
    step = _op(ctx, "maximum", select(ctx, away, spacing, below), _fconst(ctx, tiny))
    moved = select(ctx, away, _op(ctx, "add", magnitude, step),
                   _op(ctx, "sub", magnitude, step))
    out = select(ctx, _op(ctx, "less", x, _fconst(ctx, 0.0)),
                 _op(ctx, "mul", moved, _fconst(ctx, -1.0)), moved)
    is_zero = _op(ctx, "equal", x, _fconst(ctx, 0.0))
    out = select(ctx, is_zero, _op(ctx, "mul", ctx.b.op("sign", x=y), _fconst(ctx, tiny)), out)
    # From an infinity the only way is toward the finite values: the largest one, with x's sign.
    infinite = _op(ctx, "equal", magnitude, _fconst(ctx, np.inf))
    out = select(ctx, infinite, _op(ctx, "mul", ctx.b.op("sign", x=x), _fconst(ctx, info.max)),
                 out)
    out = select(ctx, _op(ctx, "equal", x, y), y, out)
    unordered = ctx.b.op("logical_or", x=_op(ctx, "not_equal", x, x), y=_op(ctx, "not_equal", y, y))
    return select(ctx, unordered, _op(ctx, "add", x, y), out)


# -- max pooling's backward ------------------------------------------------------------------------

@lowering(aten.max_pool2d_with_indices_backward.default)
def max_pool2d_with_indices_backward(ctx, grad_output, self, kernel_size, stride, padding, dilation,
                                     ceil_mode, indices):
    """max_pool2d_with_indices_backward(Tensor grad_output, Tensor self, int[2] kernel_size,
    int[2] stride, int[2] padding, int[2] dilation, bool ceil_mode, Tensor indices) -> Tensor

    The indices already say where each window's maximum was (flat within its H*W plane), so the
    window geometry is not needed: each output gradient is added at its index, overlaps summing."""
    shapes = (grad_output.shape, self.shape, indices.shape)
    if not all(isinstance(d, int) for s in shapes for d in s):
        raise ctx.unsupported("max_pool2d_with_indices_backward with dynamic shapes")
    if self.rank not in (3, 4):
        raise ctx.unsupported(f"max_pool2d_with_indices_backward of a rank-{self.rank} input (3 or 4 expected)")
    lead = list(self.shape[:-2])
    plane = self.shape[-2] * self.shape[-1]
    windows = grad_output.shape[-2] * grad_output.shape[-1]
    grad = ctx.b.op("reshape", x=ctx.cast(grad_output, ctx.float_dtype), shape=lead + [windows])
    where = ctx.b.op("reshape", x=ctx.cast(indices, dt.int32), shape=lead + [windows])
    zeros = ctx.b.op("fill", shape=lead + [plane], value=_fconst(ctx, 0.0))
    summed = ctx.b.op("scatter_along_axis", data=zeros, indices=where, updates=grad, axis=-1, mode="add")
    return ctx.b.op("reshape", x=summed, shape=list(self.shape))
