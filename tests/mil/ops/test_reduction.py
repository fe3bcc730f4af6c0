"""Reduction ops (reduce_* over axes, reduce_argmax/argmin over one axis) against coremltools.

Each table row is one case; add a row to cover a new case.
- declaration: inputs and opset versions equal coremltools' op definitions;
- TYPE_CASES: both builders give the same output dtypes/shapes (string dims are symbolic);
- VALUE_CASES: our kernel on a runtime `x` against coremltools' value inference on the same value
  (every reduction defines one);
- ERROR_CASES: bad inputs raise MILTypeError naming the op and the input.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.mil.ops._eval import ct_infer, ct_value, run_op
from tests.mil.ops._oracle import (assert_same_declaration, assert_types_match, ct_first_versions,
                                   our_infer)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.ops import CATALOGUE

AXES_OPS = ["reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp", "reduce_max",
            "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "reduce_sum_square"]
ARG_OPS = ["reduce_argmax", "reduce_argmin"]
f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(2)


def rand(shape, dtype=f32, lo=-2.0, hi=2.0):
    return _rng.uniform(lo, hi, size=shape).astype(dtype)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


# -- declarations ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", AXES_OPS + ARG_OPS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_first_versions(op)


@pytest.mark.parametrize("target", ["iOS15", "iOS16", "iOS17", "iOS18"])
@pytest.mark.parametrize("op", AXES_OPS + ARG_OPS)
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


@pytest.mark.parametrize("op", AXES_OPS + ARG_OPS)
def test_has_docstring(op):
    assert all(len(s.doc) > 10 for s in CATALOGUE.versions(op))


# -- type inference ----------------------------------------------------------------------------

def _type_cases():
    cases = []
    for op in AXES_OPS:
        cases += [
            (op, {"x": ((2, 3, 4), "fp32")}, {"axes": [1]}, "iOS15"),
            (op, {"x": ((2, 3, 4), "fp16")}, {"axes": [-1, 0], "keep_dims": True}, "iOS17"),
            (op, {"x": ((2, 3), "int32")}, {}, "iOS15"),  # all axes -> a scalar
            (op, {"x": ((2, 3), "fp32")}, {"keep_dims": True}, "iOS17"),
            (op, {"x": (("n", 3, "m"), "fp32")}, {"axes": [1, 2]}, "iOS17"),
        ]
    for op in ARG_OPS:
        cases += [
            (op, {"x": ((2, 3, 4), "fp32")}, {"axis": 1}, "iOS15"),
            (op, {"x": ((2, 3, 4), "int32")}, {}, "iOS15"),
            (op, {"x": ((2, 3, 4), "fp16")}, {"axis": -2, "keep_dims": True}, "iOS17"),
            (op, {"x": ((5, 3), "fp32")}, {"axis": 0, "output_dtype": "uint16"}, "iOS17"),
            (op, {"x": (("n", 7), "fp32")}, {"output_dtype": "int32"}, "iOS18"),
        ]
    return cases


TYPE_CASES = _type_cases()


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_types_match(our_infer(op, inputs, consts, target), ct_infer(op, inputs, consts, target))


def test_symbols_survive_reduction():
    assert our_infer("reduce_sum", {"x": (("n", 3, "m"), "fp32")}, {"axes": [1]}) == [("fp32", ("n", "m"))]
    assert our_infer("reduce_argmax", {"x": (("n", 3), "fp32")}, {"keep_dims": True}) == \
        [("int32", ("n", 1))]


# -- kernel values -----------------------------------------------------------------------------

_POSITIVE = {"reduce_log_sum"}


def _value_cases():
    cases = []
    for op in AXES_OPS:
        lo = 0.1 if op in _POSITIVE else -2.0
        cases += [
            (op, "iOS15", rand((2, 3, 4), lo=lo), {"axes": [1]}),
            (op, "iOS15", rand((2, 3, 4), lo=lo), {"axes": [-1, 0], "keep_dims": True}),
            (op, "iOS15", rand((2, 3), lo=lo), {}),
            (op, "iOS17", rand((3, 5), f16, lo=lo, hi=1.5), {"axes": [1]}),
            (op, "iOS15", _rng.integers(1 if op in _POSITIVE else -3, 4, (2, 3)).astype(i32),
             {"axes": [0]}),
            (op, "iOS15", rand((2, 3), lo=0.1), {"axes": np.array([], i32)}),  # no axes: elementwise
        ]
    for op in ARG_OPS:
        cases += [
            (op, "iOS15", rand((2, 3, 4)), {"axis": 1}),
            (op, "iOS15", rand((2, 3, 4)), {}),
            (op, "iOS15", _rng.permutation(12).astype(i32).reshape(3, 4), {"axis": -2, "keep_dims": True}),
            (op, "iOS17", rand((2, 6), f16), {"output_dtype": "uint16"}),
            (op, "iOS17", rand((5, 3)), {"axis": 0, "keep_dims": True, "output_dtype": "int32"}),
        ]
    return cases


VALUE_CASES = _value_cases()


@pytest.mark.parametrize("op,target,x,consts", VALUE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VALUE_CASES)])
def test_kernel_values(op, target, x, consts):
    (got,), (t,) = run_op(op, target, consts=consts, x=x)
    assert tuple(got.shape) == t.shape
    assert got.dtype == t.dtype.torch
    (want,) = ct_value(op, {"x": x, **consts}, target)
    want = np.asarray(want)
    if t.dtype.name in ("fp16", "fp32"):
        tol = 1e-2 if t.dtype.name == "fp16" else 1e-5
        np.testing.assert_allclose(got.double().numpy(), want.astype(np.float64), rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got.numpy(), want.astype(got.numpy().dtype).reshape(got.shape))


def test_argmax_ties_take_the_first_index():
    (got,), _ = run_op("reduce_argmax", "iOS17", x=np.array([[1, 3, 3], [2, 2, 0]], i32))
    assert got.tolist() == [1, 0]


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    ("reduce_sum", {"x": ((2, 3), "fp32")}, {"axes": [2]}, "iOS15", r"reduce_sum.*axis 2"),
    ("reduce_mean", {"x": ((2, 3), "bool")}, {}, "iOS15", r"reduce_mean.*'x' has dtype bool"),
    ("reduce_max", {"x": ((2, 3), "fp32"), "axes": ((1,), "int32")}, {}, "iOS15",
     r"reduce_max.*'axes' must be a compile-time constant"),
    ("reduce_prod", {"x": ((2, 3), "fp32")}, {"keep_dims": 1}, "iOS15", r"reduce_prod.*'keep_dims'"),
    ("reduce_prod", {}, {}, "iOS15", r"reduce_prod.*required input 'x'"),
    ("reduce_argmax", {"x": ((2, 3), "fp32")}, {"output_dtype": "int8"}, "iOS17",
     r"reduce_argmax.*'output_dtype'"),
    ("reduce_argmax", {"x": ((2, 3), "fp32")}, {"output_dtype": "int32"}, "iOS16",
     r"reduce_argmax.*unknown input.*output_dtype"),
    ("reduce_argmin", {"x": ((2, 3), "fp32")}, {"axis": -3}, "iOS15", r"reduce_argmin.*axis -3"),
    ("reduce_argmin", {"x": ((), "fp32")}, {}, "iOS15", r"reduce_argmin.*'x'"),
]


@pytest.mark.parametrize("op,inputs,consts,target,match", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_bad_inputs_raise(op, inputs, consts, target, match):
    with pytest.raises(MILTypeError, match=match):
        our_infer(op, inputs, consts, target)
