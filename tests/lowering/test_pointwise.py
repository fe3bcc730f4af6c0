"""Pointwise lowerings (arithmetic, comparisons, logic, math functions, activations, softmax, dtype
conversion), end to end through a saved package.

Each table row is (id, function, inputs). A conversion has a fixed cost of about a second (torch's
decomposition pass), so the rows of one table are converted together: one module computes every
row's function and returns the results as a tuple, and a mismatch names the row. Add a row to a
table to cover a new variant; add a table when the inputs need a new shape or dtype.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import torch_coreml
from tests.lowering._check import check_conversion

aten = torch.ops.aten
torch.manual_seed(0)


class Rows(torch.nn.Module):
    """Every row's function applied to the shared inputs, as one tuple of outputs."""

    def __init__(self, rows):
        super().__init__()
        self.fns = [fn for _, fn in rows]

    def forward(self, *inputs):
        return tuple(fn(*inputs) for fn in self.fns)


def check_rows(rows, inputs, **kwargs):
    try:
        check_conversion(Rows(rows), inputs, **kwargs)
    except AssertionError as e:
        names = ", ".join(f"{i}: {name}" for i, (name, _) in enumerate(rows))
        raise AssertionError(f"{e}\n(outputs are {names})") from e


def grid(*shape, lo=-3.0, hi=3.0):
    """Evenly spread values (no two near a rounding boundary of one another), shuffled."""
    n = math.prod(shape)
    values = torch.linspace(lo, hi, n) + 0.0123
    return values[torch.randperm(n)].reshape(shape).clone()  # a base tensor, not a view


# -- float unary functions: x in (-3, 3), p in (0.1, 4), u in (-0.9, 0.9), g in (1.1, 5) -----------

FLOAT_INPUTS = (grid(2, 3, 4), grid(2, 3, 4, lo=0.1, hi=4.0), grid(2, 3, 4, lo=-0.9, hi=0.9),
                grid(2, 3, 4, lo=1.1, hi=5.0))
FLOAT_UNARY = [
    ("neg", lambda x, p, u, g: -x),
    ("abs", lambda x, p, u, g: torch.abs(x)),
    ("reciprocal", lambda x, p, u, g: torch.reciprocal(p)),
    ("sqrt", lambda x, p, u, g: torch.sqrt(p)),
    ("rsqrt", lambda x, p, u, g: torch.rsqrt(p)),
    ("exp", lambda x, p, u, g: torch.exp(x)),
    ("exp2", lambda x, p, u, g: torch.exp2(x)),
    ("expm1", lambda x, p, u, g: torch.expm1(x)),
    ("log", lambda x, p, u, g: torch.log(p)),
    ("log2", lambda x, p, u, g: torch.log2(p)),
    ("log10", lambda x, p, u, g: torch.log10(p)),
    ("log1p", lambda x, p, u, g: torch.log1p(p)),
    ("sin", lambda x, p, u, g: torch.sin(x)),
    ("cos", lambda x, p, u, g: torch.cos(x)),
    ("tan", lambda x, p, u, g: torch.tan(u)),
    ("asin", lambda x, p, u, g: torch.asin(u)),
    ("acos", lambda x, p, u, g: torch.acos(u)),
    ("atan", lambda x, p, u, g: torch.atan(x)),
    ("sinh", lambda x, p, u, g: torch.sinh(x)),
    ("cosh", lambda x, p, u, g: torch.cosh(x)),
    ("tanh", lambda x, p, u, g: torch.tanh(x)),
    ("asinh", lambda x, p, u, g: torch.asinh(x * 100)),
    ("acosh", lambda x, p, u, g: torch.acosh(g)),
    ("atanh", lambda x, p, u, g: torch.atanh(u)),
    ("erf", lambda x, p, u, g: torch.erf(x)),
    ("erfc", lambda x, p, u, g: torch.erfc(x)),
    ("sign", lambda x, p, u, g: torch.sign(x)),
    ("floor", lambda x, p, u, g: torch.floor(x)),
    ("ceil", lambda x, p, u, g: torch.ceil(x)),
    ("round", lambda x, p, u, g: torch.round(x)),
    ("round_decimals", lambda x, p, u, g: torch.round(x, decimals=1)),
    ("round_neg_decimals", lambda x, p, u, g: torch.round(x * 100, decimals=-1)),
    ("trunc", lambda x, p, u, g: torch.trunc(x)),
    ("frac", lambda x, p, u, g: torch.frac(x)),
    ("square", lambda x, p, u, g: torch.square(x)),
    ("atan2", lambda x, p, u, g: torch.atan2(x, u)),
    ("isnan", lambda x, p, u, g: torch.isnan(torch.log(x))),
    ("isinf", lambda x, p, u, g: torch.isinf(torch.reciprocal(torch.floor(x)))),
    ("isfinite", lambda x, p, u, g: torch.isfinite(torch.log(x))),
]


@pytest.mark.parametrize("precision,target", [("float32", "iOS17"), ("float16", "iOS15")])
def test_float_unary(precision, target):
    check_rows(FLOAT_UNARY, FLOAT_INPUTS, precision=precision, target=target)


# Values where the formulas behind MIL-less ops have their edge cases: halves (round to even), the four
# quadrants and the origin of atan2, NaN and the infinities.
SPECIAL_INPUTS = (torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.25, -0.75]),
                  torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0, 2.0, -2.0, 0.0]),
                  torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0]),
                  torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), 0.0, -2.0, 3.0, -0.0]))
SPECIAL_VALUES = [
    ("round_halves", lambda h, y, x, n: torch.round(h)),
    ("round_decimals_halves", lambda h, y, x, n: torch.round(h / 10, decimals=1)),
    ("trunc_halves", lambda h, y, x, n: torch.trunc(h)),
    ("atan2_quadrants", lambda h, y, x, n: torch.atan2(y, x)),
    ("isnan", lambda h, y, x, n: torch.isnan(n)),
    ("isinf", lambda h, y, x, n: torch.isinf(n)),
    ("isfinite", lambda h, y, x, n: torch.isfinite(n)),
    ("nan_to_num", lambda h, y, x, n: torch.nan_to_num(n, nan=0.0, posinf=9.0, neginf=-9.0)),
    ("where_nan", lambda h, y, x, n: torch.where(n > 0, n, h)),
    ("signbit", lambda h, y, x, n: torch.signbit(n)),
    ("copysign_signed_zero", lambda h, y, x, n: torch.copysign(h, n)),
    ("fmax_nan", lambda h, y, x, n: torch.fmax(n, h)),
    ("fmin_nan", lambda h, y, x, n: torch.fmin(h, n)),
    ("hypot_inf", lambda h, y, x, n: torch.hypot(h, torch.nan_to_num(n, nan=1.0, posinf=math.inf, neginf=-math.inf))),
]


def test_special_values():
    check_rows(SPECIAL_VALUES, SPECIAL_INPUTS)


def test_relative_accuracy_near_zero():
    """The formulas behind expm1, log1p, asinh and acosh keep relative precision where naive
    exp(x) - 1 or log(1 + x) would return 0 or garbage; compared with no absolute tolerance."""
    x = torch.tensor([1e-30, 1e-8, -1e-7, 1e-4, -0.3, 0.7, 0.999, -0.999, 5.0, -5.0, -100.0, 100.0, 1e30,
                      -1e30, 0.0, math.inf, -math.inf, -1.0])
    rows = [("expm1", lambda x: torch.expm1(x)), ("log1p", lambda x: torch.log1p(x.clamp_min(-1.0))),
            ("asinh", lambda x: torch.asinh(x)), ("acosh", lambda x: torch.acosh(1.0 + x.abs()))]
    check_rows(rows, (x,), atol=0.0)


# -- integer and bool inputs to unary functions ----------------------------------------------------

INT_UNARY = [
    ("neg", lambda i, b: -i),
    ("abs", lambda i, b: torch.abs(i)),
    ("sign", lambda i, b: torch.sign(i)),
    ("floor", lambda i, b: torch.floor(i)),
    ("round", lambda i, b: torch.round(i)),
    ("trunc", lambda i, b: torch.trunc(i)),
    ("sqrt_int", lambda i, b: torch.sqrt(torch.abs(i))),
    ("exp_int", lambda i, b: torch.exp(i / 10).round() + torch.sin(i)),
    ("reciprocal_int", lambda i, b: torch.reciprocal(i)),
    ("sigmoid_bool", lambda i, b: torch.sigmoid(b)),
    ("isnan_int", lambda i, b: torch.isnan(i)),
    ("isinf_int", lambda i, b: torch.isinf(i)),
    ("logical_not_int", lambda i, b: torch.logical_not(i)),
    ("bitwise_not_bool", lambda i, b: ~b),
    ("square_int", lambda i, b: i * i),
    ("relu_int", lambda i, b: torch.relu(i) // 2),
    ("hardtanh_int", lambda i, b: F.hardtanh(i, -2, 3)),
]


def test_int_unary():
    check_rows(INT_UNARY, (torch.randint(-9, 10, (3, 5)), torch.rand(3, 5) > 0.5))


# -- binary arithmetic, with broadcasting ----------------------------------------------------------

def _nonzero(t):
    return torch.where(t.abs() < 0.3, torch.full_like(t, 0.7), t)


FLOAT_BINARY_INPUTS = (grid(2, 3, 4), _nonzero(grid(3, 1, lo=-2.0, hi=2.0)))
FLOAT_BINARY = [
    ("add", lambda x, y: x + y),
    ("add_alpha", lambda x, y: torch.add(x, y, alpha=2.5)),
    ("add_scalar", lambda x, y: x + 1.5),
    ("sub_alpha", lambda x, y: torch.sub(x, y, alpha=-2)),
    ("rsub", lambda x, y: 2.0 - x),
    ("mul", lambda x, y: x * y),
    ("div", lambda x, y: x / y),
    ("div_scalar", lambda x, y: x / 4),
    ("div_floor", lambda x, y: torch.div(x, y, rounding_mode="floor")),
    ("div_trunc", lambda x, y: torch.div(x, y, rounding_mode="trunc")),
    ("floor_divide_scalar", lambda x, y: x // 0.75),
    ("remainder", lambda x, y: torch.remainder(x, y)),
    ("remainder_scalar", lambda x, y: torch.remainder(x, -1.25)),
    ("remainder_scalar_tensor", lambda x, y: torch.remainder(2.0, y)),
    ("fmod", lambda x, y: torch.fmod(x, y)),
    ("fmod_scalar", lambda x, y: torch.fmod(x, 1.25)),
    ("pow", lambda x, y: torch.pow(x.abs() + 0.5, y)),
    ("pow_int_exponent", lambda x, y: torch.pow(x, 3)),
    ("pow_square", lambda x, y: x ** 2),
    ("pow_half", lambda x, y: x.abs() ** 0.5),
    ("pow_one", lambda x, y: x ** 1),
    ("pow_float_exponent", lambda x, y: x.abs() ** 1.7),
    ("pow_scalar_base", lambda x, y: 2.0 ** x),
    ("minimum", lambda x, y: torch.minimum(x, y)),
    ("maximum", lambda x, y: torch.maximum(x, y)),
    ("atan2", lambda x, y: torch.atan2(x, y)),
    ("copysign", lambda x, y: torch.copysign(x, y)),
    ("copysign_scalar", lambda x, y: torch.copysign(x, -1.0)),
    ("hypot", lambda x, y: torch.hypot(x, y)),
]


@pytest.mark.parametrize("precision,target", [("float32", "iOS16"), ("float16", "iOS18")])
def test_float_binary(precision, target):
    check_rows(FLOAT_BINARY, FLOAT_BINARY_INPUTS, precision=precision, target=target)


def _nonzero_ints(*shape):
    t = torch.randint(-7, 8, shape)
    return torch.where(t == 0, torch.full_like(t, 3), t)


INT_BINARY = [
    ("add", lambda a, b, f: a + b),
    ("add_alpha", lambda a, b, f: torch.add(a, b, alpha=3)),
    ("sub", lambda a, b, f: a - b),
    ("mul", lambda a, b, f: a * b),
    ("div_is_float", lambda a, b, f: a / b),
    ("div_int_by_float_scalar", lambda a, b, f: a / 2.5),
    ("div_floor", lambda a, b, f: torch.div(a, b, rounding_mode="floor")),
    ("div_trunc", lambda a, b, f: torch.div(a, b, rounding_mode="trunc")),
    ("floor_divide", lambda a, b, f: a // b),
    ("floor_divide_scalar", lambda a, b, f: a // -3),
    ("remainder", lambda a, b, f: a % b),
    ("remainder_scalar", lambda a, b, f: a % 4),
    ("fmod", lambda a, b, f: torch.fmod(a, b)),
    ("fmod_scalar", lambda a, b, f: torch.fmod(a, -3)),
    ("pow", lambda a, b, f: torch.pow(a, b.abs())),
    ("pow_scalar", lambda a, b, f: a ** 3),
    ("pow_scalar_base", lambda a, b, f: 2 ** b.abs()),
    ("minimum", lambda a, b, f: torch.minimum(a, b)),
    ("maximum", lambda a, b, f: torch.maximum(a, b)),
    ("int_plus_float_tensor", lambda a, b, f: a + f),
    ("int_times_float_scalar", lambda a, b, f: a * 0.5),
    ("int_plus_bool", lambda a, b, f: a + (b > 0)),
    ("bool_plus_bool", lambda a, b, f: (a > 0) + (b > 0)),
    ("bool_times_bool", lambda a, b, f: (a > 0) * (b > 0)),
    ("bool_max", lambda a, b, f: torch.maximum(a > 0, b > 0)),
]


def test_int_binary():
    check_rows(INT_BINARY, (_nonzero_ints(2, 5), _nonzero_ints(5), grid(2, 5)))


# -- comparisons, logic, where ---------------------------------------------------------------------

COMPARE_INPUTS = (torch.tensor([[-1.0, 0.0, 2.0, 3.5]]).repeat(3, 1), torch.tensor([[-1.0], [2.0], [3.5]]),
                  torch.tensor([[-2, 0, 2, 4]]), torch.tensor([[True, False, True, False]]))
COMPARISONS = [
    ("eq", lambda x, y, i, b: x == y),
    ("ne", lambda x, y, i, b: x != y),
    ("lt", lambda x, y, i, b: x < y),
    ("le", lambda x, y, i, b: x <= y),
    ("gt", lambda x, y, i, b: x > y),
    ("ge", lambda x, y, i, b: x >= y),
    ("eq_scalar", lambda x, y, i, b: x == 2.0),
    ("lt_scalar_int", lambda x, y, i, b: i < 1),
    ("ge_int_float", lambda x, y, i, b: i >= x),
    ("ne_bool", lambda x, y, i, b: b != (i > 0)),
    ("eq_bool_scalar", lambda x, y, i, b: b == True),  # noqa: E712 - the op under test
    ("logical_and", lambda x, y, i, b: torch.logical_and(x, i)),
    ("logical_or", lambda x, y, i, b: torch.logical_or(b, x > 2)),
    ("logical_xor", lambda x, y, i, b: torch.logical_xor(b, i)),
    ("logical_not", lambda x, y, i, b: torch.logical_not(x)),
    ("bitwise_and", lambda x, y, i, b: b & (x > 0)),
    ("bitwise_or", lambda x, y, i, b: b | (y > 0)),
    ("bitwise_xor", lambda x, y, i, b: b ^ (i > 0)),
    ("bitwise_and_scalar", lambda x, y, i, b: b & True),
    ("bitwise_not", lambda x, y, i, b: ~b),
    ("where", lambda x, y, i, b: torch.where(x > y, x, y)),
    ("where_scalar", lambda x, y, i, b: torch.where(b, x, 0.5)),
    ("where_int_float", lambda x, y, i, b: torch.where(b, i, x)),
    ("where_bool_values", lambda x, y, i, b: torch.where(x > 0, b, ~b)),
    ("where_int_condition", lambda x, y, i, b: torch.where(i.bool(), 1, 0)),
    ("threshold", lambda x, y, i, b: F.threshold(x, 1.0, -5.0)),
]


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_comparisons_and_logic(precision):
    check_rows(COMPARISONS, COMPARE_INPUTS, precision=precision)


# -- clamp -----------------------------------------------------------------------------------------

CLAMPS = [
    ("clamp", lambda x, lo, hi, i: torch.clamp(x, -1.0, 2.0)),
    ("clamp_min_only", lambda x, lo, hi, i: torch.clamp(x, min=0.5)),
    ("clamp_max_only", lambda x, lo, hi, i: torch.clamp(x, max=0.5)),
    ("clamp_min", lambda x, lo, hi, i: x.clamp_min(-0.5)),
    ("clamp_max", lambda x, lo, hi, i: x.clamp_max(1)),
    ("clamp_inverted", lambda x, lo, hi, i: torch.clamp(x, 2.0, -1.0)),
    ("clamp_equal", lambda x, lo, hi, i: torch.clamp(x, 1.0, 1.0)),
    ("clamp_tensor", lambda x, lo, hi, i: torch.clamp(x, lo, hi)),
    ("clamp_tensor_min_only", lambda x, lo, hi, i: torch.clamp(x, min=lo)),
    ("clamp_tensor_max_only", lambda x, lo, hi, i: torch.clamp(x, max=hi)),
    ("clamp_int", lambda x, lo, hi, i: torch.clamp(i, -2, 3)),
    ("clamp_int_float_bounds", lambda x, lo, hi, i: torch.clamp(i, -2.5, 3.5)),
    ("hardtanh", lambda x, lo, hi, i: F.hardtanh(x)),
    ("hardtanh_bounds", lambda x, lo, hi, i: F.hardtanh(x, -0.5, 2.0)),
    ("relu6", lambda x, lo, hi, i: F.relu6(x * 3)),
]


@pytest.mark.parametrize("precision,target", [("float32", "iOS15"), ("float16", "iOS17")])
def test_clamp(precision, target):
    inputs = (grid(2, 3, 4), grid(3, 1, lo=-1.0, hi=0.0), grid(4, lo=0.5, hi=2.0), torch.randint(-5, 6, (2, 3)))
    check_rows(CLAMPS, inputs, precision=precision, target=target)


# -- activations and softmax -----------------------------------------------------------------------

class PReLU(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.act = torch.nn.PReLU(channels)
        with torch.no_grad():
            self.act.weight.copy_(torch.linspace(0.05, 0.5, channels))

    def forward(self, x):
        return self.act(x)


ACTIVATIONS = [
    ("relu", lambda x: torch.relu(x)),
    ("sigmoid", lambda x: torch.sigmoid(x)),
    ("tanh", lambda x: torch.tanh(x)),
    ("gelu", lambda x: F.gelu(x)),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("silu", lambda x: F.silu(x)),
    ("hardsigmoid", lambda x: F.hardsigmoid(x)),
    ("hardswish", lambda x: F.hardswish(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x)),
    ("leaky_relu_slope", lambda x: F.leaky_relu(x, 0.2)),
    ("elu", lambda x: F.elu(x)),
    ("elu_alpha", lambda x: F.elu(x, alpha=0.5)),
    ("elu_scaled", lambda x: aten.elu(x, 1.5, 2.0, 0.5)),
    ("selu", lambda x: F.selu(x)),
    ("celu", lambda x: F.celu(x, alpha=0.7)),
    ("softplus", lambda x: F.softplus(x)),
    ("softplus_beta", lambda x: F.softplus(x, beta=2.0)),
    ("softplus_threshold", lambda x: F.softplus(x, beta=1.5, threshold=1.0)),
    ("mish", lambda x: F.mish(x)),
    ("prelu_shared", lambda x: F.prelu(x, torch.tensor([0.25]))),
    ("softmax_last", lambda x: torch.softmax(x, -1)),
    ("softmax_dim1", lambda x: torch.softmax(x, 1)),
    ("log_softmax", lambda x: torch.log_softmax(x, -1)),
    ("log_softmax_dim0", lambda x: torch.log_softmax(x * 4, 0)),
    ("logsigmoid", lambda x: F.logsigmoid(x)),
    ("softsign", lambda x: F.softsign(x)),
    ("tanhshrink", lambda x: F.tanhshrink(x)),
    ("hardshrink", lambda x: F.hardshrink(x, 0.5)),
]


@pytest.mark.parametrize("precision,target", [("float32", "iOS17"), ("float16", "iOS15")])
def test_activations(precision, target):
    check_rows(ACTIVATIONS, (grid(2, 3, 4, 5, lo=-6.0, hi=6.0),), precision=precision, target=target)


class PReLUs(torch.nn.Module):
    """Per-channel prelu at ranks 4 (Core ML's prelu), 3 and 2 (a select), one shared slope (leaky_relu)."""

    def __init__(self):
        super().__init__()
        self.acts = torch.nn.ModuleList([PReLU(4), PReLU(5), PReLU(3), PReLU(1)])

    def forward(self, x4, x3, x2):
        return self.acts[0](x4), self.acts[1](x3), self.acts[2](x2), self.acts[3](x4)


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_prelu_per_channel(precision):
    check_conversion(PReLUs(), (grid(2, 4, 3, 3), grid(2, 5, 3), grid(3, 3)), precision=precision)


def test_softmax_dynamic_batch():
    rows = [("softmax", lambda x, y: torch.softmax(x, -1)), ("log_softmax", lambda x, y: torch.log_softmax(x, 1)),
            ("where", lambda x, y: torch.where(x > y, x, y * 2)), ("div_floor", lambda x, y: x // y),
            ("clamp", lambda x, y: torch.clamp(x, min=y)), ("gelu", lambda x, y: F.gelu(x)),
            ("to_int", lambda x, y: (x * 3).to(torch.int32)),
            ("where_scalars", lambda x, y: torch.where(x > 0, 1.0, -1.0)),
            ("prelu_rank3", lambda x, y: F.prelu(x, torch.tensor([0.1, 0.2, 0.3])))]
    batch = torch.export.Dim("batch", min=1, max=16)
    check_rows(rows, (grid(2, 3, 5), _nonzero(grid(3, 1))), dynamic_shapes=(({0: batch}, None),),
               run_inputs=[(grid(5, 3, 5), _nonzero(grid(3, 1)))])


# -- dtype conversion ------------------------------------------------------------------------------

CONVERSIONS = [
    ("float_to_int", lambda x, i, b: x.to(torch.int32)),
    ("float_to_long", lambda x, i, b: x.long()),
    ("float_to_bool", lambda x, i, b: x.floor().bool()),
    ("float_to_half", lambda x, i, b: x.half().float()),
    ("float_to_double", lambda x, i, b: x.double()),
    ("int_to_float", lambda x, i, b: i.float()),
    ("int_to_uint8", lambda x, i, b: (i * 50).to(torch.uint8)),
    ("int_to_int8", lambda x, i, b: (i * 50).to(torch.int8)),
    ("int_to_int16", lambda x, i, b: (i * 10000).to(torch.int16)),
    # Only in range: torch's float to narrow int conversion of out-of-range values is C++ UB.
    ("float_to_uint8", lambda x, i, b: (x.abs() * 80).to(torch.uint8)),
    ("float_to_int8", lambda x, i, b: (x * 40).to(torch.int8)),
    ("bool_to_int", lambda x, i, b: b.int()),
    ("bool_to_float", lambda x, i, b: b.float()),
    ("bool_to_uint8", lambda x, i, b: b.to(torch.uint8)),
    ("int_to_bool", lambda x, i, b: i.bool()),
    ("type_as", lambda x, i, b: i.type_as(x) + x),
    ("same_dtype", lambda x, i, b: x.to(torch.float32)),
]


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_conversions(precision):
    # Multiples of 1/8: exact in fp16 too, so truncation to an integer sees the same value as torch.
    inputs = ((grid(2, 3, 4) * 8).round() / 8, torch.randint(-9, 10, (2, 3, 4)), torch.rand(2, 3, 4) > 0.5)
    check_rows(CONVERSIONS, inputs, precision=precision)


# -- what the lowerings refuse ---------------------------------------------------------------------

def test_integer_beyond_int32_is_refused():
    with pytest.raises(torch_coreml.errors.ConversionError, match="does not fit MIL's int32"):
        torch_coreml.export(Rows([("eq", lambda a: a == 2**40)]), (torch.arange(4),))
