"""Elementwise binary and unary MIL ops, checked against coremltools as the oracle.

Each table row is one case; add a row to cover a new case. Three kinds of check:
- declaration: our inputs (names, const, optional, type variables, dtype domains) and opset versions
  equal coremltools' op definitions;
- type inference: `TYPE_CASES` rows build the op in both builders and compare output dtypes/shapes
  (string dims are symbolic);
- kernel values: `VALUE_CASES` rows run our kernel on runtime inputs and compare with coremltools'
  value inference on the same values as consts, or with the numpy formula given in the row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.mil.ops._eval import ct_infer, ct_value, run_op
from tests.mil.ops._oracle import (assert_close, assert_same_declaration, assert_types_match,
                                   ct_first_versions, our_infer)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.ops import CATALOGUE

ARITH = ["add", "sub", "mul", "real_div", "floor_div", "mod", "pow", "maximum", "minimum"]
COMPARE = ["equal", "not_equal", "greater", "greater_equal", "less", "less_equal"]
LOGICAL = ["logical_and", "logical_or", "logical_xor"]
UNARY_FLOAT = ["acos", "asin", "atan", "atanh", "ceil", "cos", "cosh", "erf", "exp", "floor", "round",
               "sin", "sinh", "sqrt", "tan", "tanh"]
UNARY_INT = ["abs", "exp2", "sign", "square"]
EPSILON_OPS = ["inverse", "log", "rsqrt"]
OTHER = ["clip", "threshold", "logical_not", "cast"]
ALL_OPS = ARITH + COMPARE + LOGICAL + UNARY_FLOAT + UNARY_INT + EPSILON_OPS + OTHER

f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(0)


def rand(shape, lo=-3.0, hi=3.0, dtype=f32):
    return _rng.uniform(lo, hi, size=shape).astype(dtype)


@pytest.fixture(autouse=True)
def _quiet():
    # numpy warns on the divisions by zero and NaNs that some rows check on purpose.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


# -- declarations ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ALL_OPS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_first_versions(op)


@pytest.mark.parametrize("target", ["iOS15", "iOS16", "iOS17", "iOS18"])
@pytest.mark.parametrize("op", ALL_OPS)
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


@pytest.mark.parametrize("op", ALL_OPS)
def test_has_docstring(op):
    assert all(len(s.doc) > 5 for s in CATALOGUE.versions(op))


# -- type inference ----------------------------------------------------------------------------

def _binary_type_cases():
    cases = []
    for op in ARITH + COMPARE:
        cases += [
            (op, {"x": ((2, 3), "fp32"), "y": ((3,), "fp32")}, {}, "iOS15"),
            (op, {"x": ((4, 1), "fp16"), "y": ((1, 5), "fp16")}, {}, "iOS17"),
            (op, {"y": ((2, 2), "int32")}, {"x": i32(3)}, "iOS17"),  # rank-0 const x
            (op, {"x": (("n", 3), "fp32"), "y": ((1, 3), "fp32")}, {}, "iOS17"),
        ]
    for op in LOGICAL:
        cases += [
            (op, {"x": ((2, 1, 3), "bool"), "y": ((4, 1), "bool")}, {}, "iOS15"),
            (op, {"x": (("n", 1), "bool"), "y": ((1, 5), "bool")}, {}, "iOS17"),
        ]
    return cases


def _unary_type_cases():
    cases = []
    for op in UNARY_FLOAT + UNARY_INT + EPSILON_OPS:
        cases += [(op, {"x": ((2, 3), "fp32")}, {}, "iOS15"),
                  (op, {"x": (("n", 4), "fp16")}, {}, "iOS17")]
    for op in UNARY_INT:
        cases.append((op, {"x": ((5,), "int32")}, {}, "iOS15"))
    for op in EPSILON_OPS:
        cases += [(op, {"x": ((3,), "fp16")}, {"epsilon": f16(1e-3)}, "iOS15"),
                  (op, {"x": ((3,), "fp16")}, {"epsilon": f32(1e-3)}, "iOS17")]
    return cases


def _other_type_cases():
    cases = [
        ("clip", {"x": ((2, "n"), "fp32")}, {"alpha": f32(-1), "beta": f32(1)}, "iOS15"),
        ("clip", {"x": ((2, 3), "fp16")}, {"alpha": f16(0), "beta": f16(6)}, "iOS17"),
        ("threshold", {"x": ((2, 3), "int32")}, {"alpha": i32(1)}, "iOS15"),
        ("threshold", {"x": (("n",), "fp16")}, {"alpha": f16(0.5)}, "iOS17"),
        ("logical_not", {"x": ((2, "n"), "bool")}, {}, "iOS15"),
    ]
    for src in ("fp16", "fp32", "int32", "bool"):
        for dst in ("fp16", "fp32", "int32", "bool"):
            cases.append(("cast", {"x": ((2, "n"), src)}, {"dtype": dst}, "iOS15"))
    for src, dst in [("fp32", "int8"), ("fp32", "uint8"), ("int32", "int16"), ("int32", "uint16"),
                     ("uint8", "fp32"), ("int16", "fp16"), ("uint16", "int32"), ("int8", "bool")]:
        cases.append(("cast", {"x": ((3, "n"), src)}, {"dtype": dst}, "iOS17"))
    return cases


TYPE_CASES = _binary_type_cases() + _unary_type_cases() + _other_type_cases()


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_types_match(our_infer(op, inputs, consts, target), ct_infer(op, inputs, consts, target))


def test_broadcast_keeps_known_symbols():
    (dtype, shape), = our_infer("add", {"x": (("n", 3), "fp32"), "y": ((1, 3), "fp32")})
    assert shape == ("n", 3)
    (dtype, shape), = our_infer("less", {"x": (("n", 1), "int32"), "y": ((4,), "int32")})
    assert (dtype, shape) == ("bool", ("n", 4))


def test_cast_keeps_symbols():
    (dtype, shape), = our_infer("cast", {"x": (("b", 7), "fp32")}, {"dtype": "int8"})
    assert (dtype, shape) == ("int8", ("b", 7))


# -- kernel values -----------------------------------------------------------------------------

def _binary_value_cases():
    cases = []
    for op in ARITH + COMPARE:
        pos = op == "pow"
        lo = 0.5 if pos else -3.0
        cases += [
            (op, {"x": rand((2, 3), lo), "y": rand((3,), 0.5, 2.0)}, {}),
            (op, {"x": rand((4, 1), lo, dtype=f16), "y": rand((1, 5), 0.5, 2.0, dtype=f16)}, {}),
        ]
        if op != "pow":
            cases.append((op, {"x": np.array([7, -7, 7, -7, 0, 5], i32),
                               "y": np.array([2, 2, -2, -2, 3, 5], i32)}, {}))
    cases += [
        ("pow", {"x": np.array([2, 3, -2, 0], i32), "y": np.array([3, 2, 3, 4], i32)}, {}),
        # Integer division by zero gives 0, like numpy.
        ("floor_div", {"x": np.array([7, -7, 0], i32), "y": np.array([0, 0, 0], i32)}, {}),
        ("mod", {"x": np.array([7, -7, 0], i32), "y": np.array([0, 0, 0], i32)}, {}),
        ("floor_div", {"x": np.array([7.5, -7.5, 7.5, -7.5], f32), "y": np.array([2, 2, -2, -2], f32)}, {}),
        ("mod", {"x": np.array([7.5, -7.5, 7.5, -7.5], f32), "y": np.array([2, 2, -2, -2], f32)}, {}),
        ("real_div", {"x": np.array([7, -7, 6, 1], i32), "y": np.array([2, 2, 4, -3], i32)}, {}),
        ("maximum", {"x": np.array([1.0, np.nan], f32), "y": np.array([np.nan, 2.0], f32)}, {}),
        # y as a const scalar broadcast against a runtime tensor
        ("add", {"x": rand((2, 3))}, {"y": f32(1.5)}),
        ("equal", {"x": np.array([[1, 2], [3, 4]], i32)}, {"y": np.array([1, 4], i32)}),
    ]
    for op in LOGICAL:
        cases.append((op, {"x": np.array([[True, False, True, False]]),
                           "y": np.array([[True], [False]])}, {}))
    return cases


def _unary_value_cases():
    domain = {"acos": (-0.95, 0.95), "asin": (-0.95, 0.95), "atanh": (-0.9, 0.9), "sqrt": (0.0, 4.0),
              "tan": (-1.3, 1.3), "log": (0.05, 4.0), "rsqrt": (0.05, 4.0), "inverse": (0.5, 4.0)}
    cases = []
    for op in UNARY_FLOAT + UNARY_INT + EPSILON_OPS:
        lo, hi = domain.get(op, (-3.0, 3.0))
        cases += [(op, {"x": rand((2, 5), lo, hi)}, {}), (op, {"x": rand((7,), lo, hi, dtype=f16)}, {})]
    for op in UNARY_INT:
        cases.append((op, {"x": np.array([-3, -1, 0, 2, 5], i32)}, {}))
    for op in EPSILON_OPS:
        cases += [(op, {"x": rand((4,), 0.5, 3.0)}, {"epsilon": f32(0.25)}),
                  (op, {"x": np.array([0.0, 1.0], f32)}, {}),  # default epsilon keeps x = 0 finite-ish
                  (op, {"x": np.array([0.0, 1.0], f16)}, {})]
    cases += [
        ("round", {"x": np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49, -1.51], f32)}, {}),
        ("round", {"x": np.array([0.5, 1.5, 2.5, -0.5], f16)}, {}),
        ("clip", {"x": rand((3, 4), -5, 5)}, {"alpha": f32(-1), "beta": f32(2)}),
        ("clip", {"x": rand((3, 4), -5, 5, dtype=f16)}, {"alpha": f16(0), "beta": f16(6)}),
        ("threshold", {"x": np.array([-3, 0, 1, 4], i32)}, {"alpha": i32(1)}),
        ("threshold", {"x": rand((2, 3), dtype=f16)}, {"alpha": f16(0.5)}),
        ("logical_not", {"x": np.array([[True, False], [False, False]])}, {}),
    ]
    floats = np.array([-1.7, 1.7, 300.2, -300.5, 0.0, 40000.7, -40000.2], f32)
    ints = np.array([-1, 0, 70000, 255, 256, -129, 128], i32)
    for dst in ("fp16", "fp32", "int8", "uint8", "int16", "uint16", "int32", "bool"):
        cases += [("cast", {"x": floats}, {"dtype": dst}), ("cast", {"x": ints}, {"dtype": dst})]
    cases += [
        ("cast", {"x": np.array([True, False])}, {"dtype": "fp32"}),
        ("cast", {"x": np.array([True, False])}, {"dtype": "int32"}),
        ("cast", {"x": np.array([0, 200, 255], np.uint8)}, {"dtype": "int8"}),
        ("cast", {"x": np.array([0, 65535, 300], np.uint16)}, {"dtype": "fp32"}),
        ("cast", {"x": np.array([-5, 3], np.int16)}, {"dtype": "uint16"}),
        ("cast", {"x": np.array([0.1, 1e5], f32)}, {"dtype": "fp16"}),
        ("cast", {"x": np.array([np.nan, 0.0, -0.0], f32)}, {"dtype": "bool"}),
    ]
    return cases


VALUE_CASES = _binary_value_cases() + _unary_value_cases()


def _case_id(i, case):
    op, inputs, consts = case
    first = next(iter(inputs.values()))
    return f"{op}-{first.dtype}-{i}"


@pytest.mark.parametrize("op,inputs,consts", VALUE_CASES,
                         ids=[_case_id(i, c) for i, c in enumerate(VALUE_CASES)])
def test_kernel_matches_coremltools_value_inference(op, inputs, consts):
    (got,), (out_type,) = run_op(op, "iOS17", consts=consts, **inputs)
    (expected,) = ct_value(op, {**inputs, **consts})
    assert expected is not None, f"coremltools has no value inference for {op}"
    assert tuple(got.shape) == tuple(out_type.shape)
    assert_close(got, expected, out_type.dtype.name)


def test_kernel_on_scalars():
    (got,), (t,) = run_op("sub", x=np.array(5, i32), y=np.array(7, i32))
    assert t.shape == () and got.numel() == 1 and int(got) == -2


def test_kernel_keeps_rank_0():
    (got,), (t,) = run_op("sub", x=np.array(5, i32), y=np.array(7, i32))
    assert tuple(got.shape) == t.shape == ()


def test_broadcast_of_two_unknown_dims_is_a_fresh_symbol():
    (_, shape), = our_infer("add", {"x": (("n",), "fp32"), "y": (("m",), "fp32")})
    assert shape[0] not in ("n", "m")


def test_epsilon_default_follows_x_dtype():
    # 1e-45 is 0 in fp16, so log(0) stays -inf; in fp32 it is a denormal, so the log is finite.
    (got16,), _ = run_op("log", x=np.array([0.0], f16))
    (got32,), _ = run_op("log", x=np.array([0.0], f32))
    assert np.isneginf(got16.numpy()[0]) and np.isfinite(got32.numpy()[0])


def test_mixed_epsilon_dtype_computes_in_the_wider_type():
    # iOS17: fp16 x with an fp32 epsilon too small for fp16
    (got,), (t,) = run_op("log", "iOS17", consts={"epsilon": f32(1e-30)}, x=np.array([0.0], f16))
    assert t.dtype.name == "fp16" and got.numpy()[0] == np.float16(np.log(np.float32(1e-30)))


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    # (op, runtime input types, consts, target, words the message must contain)
    ("add", {"x": ((2,), "fp32"), "y": ((2,), "int32")}, {}, "iOS17", ["add", "'y'"]),
    ("add", {"x": ((2,), "fp32")}, {}, "iOS17", ["add", "required", "'y'"]),
    ("mul", {"x": ((2, 3), "fp32"), "y": ((4,), "fp32")}, {}, "iOS17", ["mul", "broadcast"]),
    ("greater", {"x": ((2,), "bool"), "y": ((2,), "bool")}, {}, "iOS17", ["greater", "'x'"]),
    ("logical_or", {"x": ((2,), "fp32"), "y": ((2,), "fp32")}, {}, "iOS17", ["logical_or", "'x'"]),
    ("sin", {"x": ((2,), "int32")}, {}, "iOS17", ["sin", "'x'"]),
    ("abs", {"x": ((2,), "bool")}, {}, "iOS17", ["abs", "'x'"]),
    ("logical_not", {"x": ((2,), "fp32")}, {}, "iOS17", ["logical_not", "'x'"]),
    ("clip", {"x": ((2,), "fp32"), "alpha": ((), "fp32")}, {"beta": f32(1)}, "iOS17",
     ["clip", "'alpha'", "constant"]),
    ("clip", {"x": ((2,), "fp32")}, {"alpha": f32(1)}, "iOS17", ["clip", "required", "'beta'"]),
    ("clip", {"x": ((2,), "fp32")}, {"alpha": f32(2), "beta": f32(1)}, "iOS17", ["clip", "'alpha'", "'beta'"]),
    ("clip", {"x": ((2,), "int32")}, {"alpha": i32(0), "beta": i32(1)}, "iOS17", ["clip", "'x'"]),
    ("threshold", {"x": ((2,), "fp32"), "alpha": ((), "fp32")}, {}, "iOS17", ["threshold", "'alpha'"]),
    ("inverse", {"x": ((2,), "fp32")}, {"epsilon": f16(1e-3)}, "iOS15", ["inverse", "'epsilon'"]),
    ("rsqrt", {"x": ((2,), "fp32"), "epsilon": ((), "fp32")}, {}, "iOS17", ["rsqrt", "'epsilon'"]),
    ("log", {"x": ((2,), "fp32")}, {"epsilon": i32(1)}, "iOS17", ["log", "'epsilon'"]),
    ("cast", {"x": ((2,), "fp32")}, {"dtype": "int8"}, "iOS15", ["cast", "'dtype'", "int8"]),
    ("cast", {"x": ((2,), "fp32")}, {"dtype": "int64"}, "iOS17", ["cast", "'dtype'"]),
    ("cast", {"x": ((2,), "int8")}, {"dtype": "fp32"}, "iOS15", ["cast", "'x'"]),
    ("cast", {"x": ((2,), "fp32")}, {"dtype": i32(1)}, "iOS17", ["cast", "'dtype'"]),
    ("cast", {"x": ((2,), "fp32")}, {}, "iOS17", ["cast", "required", "'dtype'"]),
]


@pytest.mark.parametrize("op,inputs,consts,target,words", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_bad_inputs_raise(op, inputs, consts, target, words):
    with pytest.raises(MILTypeError) as err:
        our_infer(op, inputs, consts, target)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_clip_accepts_alpha_above_beta_before_ios17():
    (got,), _ = run_op("clip", "iOS15", consts={"alpha": f32(2), "beta": f32(1)}, x=np.array([0.0, 5.0], f32))
    assert got.tolist() == [1.0, 1.0]
