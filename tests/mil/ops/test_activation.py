"""Activation MIL ops, checked against coremltools as the oracle.

Same layout as test_elementwise.py: declarations and versions against coremltools' definitions,
`TYPE_CASES` for type inference, `VALUE_CASES` for kernel values (compared with coremltools' value
inference, or with the numpy formula in `FORMULAS` for ops coremltools cannot fold), `ERROR_CASES`
for rejected inputs. Add a row to add a case.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tests.mil.ops._eval import ct_infer, ct_value, run_op
from tests.mil.ops._oracle import (assert_close, assert_same_declaration, assert_types_match,
                                   ct_first_versions, our_infer)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.ops import CATALOGUE

PLAIN = ["relu", "relu6", "sigmoid", "silu", "softplus", "softsign"]
WITH_ALPHA = ["elu", "leaky_relu", "thresholded_relu"]
WITH_ALPHA_BETA = ["clamped_relu", "linear_activation", "scaled_tanh", "sigmoid_hard"]
PER_CHANNEL = ["prelu", "softplus_parametric"]
ALL_OPS = PLAIN + WITH_ALPHA + WITH_ALPHA_BETA + PER_CHANNEL + ["gelu", "softmax"]

f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(1)


def rand(shape, lo=-4.0, hi=4.0, dtype=f32):
    return _rng.uniform(lo, hi, size=shape).astype(dtype)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _params(op, dtype=f32):
    """Scalar constants for an op with alpha (and beta)."""
    alpha = {"thresholded_relu": 0.5, "sigmoid_hard": 0.2}.get(op, 0.3)
    beta = {"clamped_relu": 2.0, "sigmoid_hard": 0.5}.get(op, 1.5)
    if op in WITH_ALPHA:
        return {"alpha": dtype(alpha)}
    return {"alpha": dtype(alpha), "beta": dtype(beta)}


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

def _type_cases():
    cases = []
    for op in PLAIN:
        cases += [(op, {"x": ((2, 3), "fp32")}, {}, "iOS15"), (op, {"x": (("n", 4), "fp16")}, {}, "iOS17")]
    for op in WITH_ALPHA + WITH_ALPHA_BETA:
        cases += [(op, {"x": ((2, 3), "fp32")}, _params(op), "iOS15"),
                  (op, {"x": ((2, "n"), "fp16")}, _params(op, f16), "iOS15"),
                  (op, {"x": (("n", 3), "fp16")}, _params(op, f32), "iOS17")]  # U differs from T
    cases += [
        ("prelu", {"x": ((1, 3, 4, 4), "fp32")}, {"alpha": np.array([0.1, 0.2, 0.3], f32)}, "iOS15"),
        ("prelu", {"x": (("b", 3, 5), "fp16")}, {"alpha": np.full(3, 0.2, f16)}, "iOS15"),
        ("prelu", {"x": (("b", 2, 3, 4, 5), "fp16")}, {"alpha": np.full(2, 0.2, f32)}, "iOS17"),
        ("softplus_parametric", {"x": ((1, 3, 4, 4), "fp32")},
         {"alpha": np.ones(3, f32), "beta": np.full(3, 2.0, f32)}, "iOS15"),
        ("softplus_parametric", {"x": (("b", 2, "h"), "fp16")},
         {"alpha": np.ones(2, f32), "beta": np.full(2, 2.0, f32)}, "iOS17"),
        ("gelu", {"x": ((2, 3), "fp32")}, {}, "iOS15"),
        ("gelu", {"x": (("n", 3), "fp16")}, {"mode": "TANH_APPROXIMATION"}, "iOS17"),
        ("gelu", {"x": ((4,), "fp32")}, {"mode": "SIGMOID_APPROXIMATION"}, "iOS17"),
        ("softmax", {"x": ((2, 3, 4), "fp32")}, {}, "iOS15"),
        ("softmax", {"x": (("n", 3, 4), "fp16")}, {"axis": i32(-2)}, "iOS17"),
        ("softmax", {"x": ((2, "n"), "fp32")}, {"axis": i32(0)}, "iOS17"),
    ]
    return cases


TYPE_CASES = _type_cases()


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_types_match(our_infer(op, inputs, consts, target), ct_infer(op, inputs, consts, target))


def test_prelu_accepts_a_symbolic_channel_count():
    # coremltools rejects this; the channel count is then checked when the kernel runs.
    (dtype, shape), = our_infer("prelu", {"x": ((1, "c", 4, 4), "fp32")}, {"alpha": np.ones(3, f32)})
    assert (dtype, shape) == ("fp32", (1, "c", 4, 4))


# -- kernel values -----------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Ops whose coremltools definition has no value inference: the expected value is this formula,
# evaluated in float64.
FORMULAS = {"silu": lambda x: x * _sigmoid(x)}


def _value_cases():
    cases = []
    for op in PLAIN:
        cases += [(op, {"x": rand((3, 4))}, {}), (op, {"x": rand((5,), dtype=f16)}, {}),
                  (op, {"x": np.array([-30.0, -1.0, 0.0, 1.0, 30.0], f32)}, {})]
    for op in WITH_ALPHA + WITH_ALPHA_BETA:
        cases += [(op, {"x": rand((3, 4))}, _params(op)),
                  (op, {"x": rand((2, 3), dtype=f16)}, _params(op, f16)),
                  (op, {"x": rand((2, 3), dtype=f16)}, _params(op, f32)),  # iOS17 mixed dtypes
                  (op, {"x": np.array([-1.0, 0.0, 0.5, 1.0], f32)}, _params(op))]
    cases += [
        ("prelu", {"x": rand((2, 3, 4, 4))}, {"alpha": np.array([0.1, -0.2, 0.3], f32)}),
        ("prelu", {"x": rand((2, 2, 5), dtype=f16)}, {"alpha": np.full(2, 0.25, f16)}),
        ("prelu", {"x": rand((1, 2, 2, 3, 2))}, {"alpha": np.full(2, 0.25, f16)}),
        ("softplus_parametric", {"x": rand((2, 3, 4, 4))},
         {"alpha": np.array([1.0, 0.5, 2.0], f32), "beta": np.array([1.0, 2.0, 0.5], f32)}),
        ("softplus_parametric", {"x": rand((1, 2, 3), dtype=f16)},
         {"alpha": np.array([1.0, 0.5], f16), "beta": np.array([1.0, 2.0], f16)}),
        ("softplus_parametric", {"x": rand((1, 2, 3), dtype=f16)},
         {"alpha": np.array([1.0, 0.5], f32), "beta": np.array([1.0, 2.0], f32)}),  # iOS17 mixed
    ]
    for mode in (None, "EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"):
        consts = {} if mode is None else {"mode": mode}
        cases += [("gelu", {"x": rand((3, 5))}, consts), ("gelu", {"x": rand((6,), dtype=f16)}, consts)]
    for axis in (None, 0, 1, -1, -3):
        consts = {} if axis is None else {"axis": i32(axis)}
        cases += [("softmax", {"x": rand((2, 3, 4))}, consts)]
    cases.append(("softmax", {"x": rand((3, 7), dtype=f16)}, {"axis": i32(-2)}))
    return cases


VALUE_CASES = _value_cases()


def _case_id(i, case):
    op, inputs, consts = case
    dtypes = "-".join(str(np.asarray(v).dtype) for v in [*inputs.values(), *consts.values()]
                      if not isinstance(v, str))
    return f"{op}-{dtypes}-{i}"


@pytest.mark.parametrize("op,inputs,consts", VALUE_CASES,
                         ids=[_case_id(i, c) for i, c in enumerate(VALUE_CASES)])
def test_kernel_values(op, inputs, consts):
    (got,), (out_type,) = run_op(op, "iOS17", consts=consts, **inputs)
    assert tuple(got.shape) == tuple(out_type.shape)
    if op in FORMULAS:
        expected = FORMULAS[op](inputs["x"].astype(np.float64))
    else:
        (expected,) = ct_value(op, {**inputs, **consts}, "iOS17")
        assert expected is not None, f"coremltools has no value inference for {op}; add a formula"
    assert_close(got, expected, out_type.dtype.name)


@pytest.mark.parametrize("mode,formula", [
    ("EXACT", lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))),
    ("TANH_APPROXIMATION",
     lambda x: 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    ("SIGMOID_APPROXIMATION", lambda x: x / (1 + math.exp(-1.702 * x))),
])
def test_gelu_modes_follow_their_formulas(mode, formula):
    x = np.linspace(-5, 5, 41).astype(f32)
    (got,), _ = run_op("gelu", consts={"mode": mode}, x=x)
    np.testing.assert_allclose(got.numpy(), [formula(float(v)) for v in x], rtol=1e-5, atol=1e-6)


def test_iOS15_versions_run_the_same_kernels():
    x = rand((2, 3, 4))
    for op, consts in [("elu", {"alpha": f32(0.5)}), ("prelu", {"alpha": np.ones(3, f32) * 0.1})]:
        (a,), _ = run_op(op, "iOS15", consts=consts, x=x)
        (b,), _ = run_op(op, "iOS17", consts=consts, x=x)
        assert np.array_equal(a.numpy(), b.numpy())


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    # (op, runtime input types, consts, target, words the message must contain)
    ("relu", {"x": ((2,), "int32")}, {}, "iOS17", ["relu", "'x'"]),
    ("sigmoid", {}, {}, "iOS17", ["sigmoid", "required", "'x'"]),
    ("elu", {"x": ((2,), "fp32"), "alpha": ((), "fp32")}, {}, "iOS17", ["elu", "'alpha'", "constant"]),
    ("elu", {"x": ((2,), "fp32")}, {"alpha": f16(1)}, "iOS15", ["elu", "'alpha'"]),
    ("leaky_relu", {"x": ((2,), "fp32")}, {}, "iOS17", ["leaky_relu", "required", "'alpha'"]),
    ("leaky_relu", {"x": ((2,), "fp32")}, {"alpha": i32(1)}, "iOS17", ["leaky_relu", "'alpha'"]),
    ("linear_activation", {"x": ((2,), "fp32")}, {"alpha": f32(1), "beta": f16(1)}, "iOS17",
     ["linear_activation", "'beta'"]),
    ("sigmoid_hard", {"x": ((2,), "fp32"), "beta": ((), "fp32")}, {"alpha": f32(1)}, "iOS17",
     ["sigmoid_hard", "'beta'"]),
    ("prelu", {"x": ((2, 3), "fp32")}, {"alpha": np.ones(3, f32)}, "iOS17", ["prelu", "'x'", "rank"]),
    ("prelu", {"x": ((1, 3, 4, 4), "fp32")}, {"alpha": np.ones(4, f32)}, "iOS17", ["prelu", "'alpha'"]),
    ("prelu", {"x": ((1, 3, 4, 4), "fp32")}, {"alpha": np.ones((1, 3), f32)}, "iOS17", ["prelu", "'alpha'"]),
    ("prelu", {"x": ((1, 2, 4), "fp32")}, {"alpha": np.array([0.1, 0.2], f32)}, "iOS17",
     ["prelu", "'alpha'"]),
    ("softplus_parametric", {"x": ((2, 3), "fp32")}, {"alpha": np.ones(3, f32), "beta": np.ones(3, f32)},
     "iOS17", ["softplus_parametric", "'x'"]),
    ("softplus_parametric", {"x": ((1, 3, 4), "fp32")}, {"alpha": np.ones(3, f32), "beta": np.ones(2, f32)},
     "iOS17", ["softplus_parametric", "'beta'"]),
    # alpha and beta share the type variable U, so they must agree even when x differs
    ("softplus_parametric", {"x": ((1, 2, 3), "fp16")}, {"alpha": np.ones(2, f32), "beta": np.ones(2, f16)},
     "iOS17", ["softplus_parametric", "'beta'"]),
    ("clamped_relu", {"x": ((2,), "fp16")}, {"alpha": f16(0.1), "beta": f32(6)}, "iOS17",
     ["clamped_relu", "'beta'"]),
    ("gelu", {"x": ((2,), "fp32")}, {"mode": "FAST"}, "iOS17", ["gelu", "'mode'"]),
    ("gelu", {"x": ((2,), "fp32"), "mode": ((), "fp32")}, {}, "iOS17", ["gelu", "'mode'"]),
    ("softmax", {"x": ((2, 3), "fp32")}, {"axis": i32(2)}, "iOS17", ["softmax", "axis"]),
    ("softmax", {"x": ((2, 3), "fp32")}, {"axis": f32(1)}, "iOS17", ["softmax", "'axis'"]),
    ("softmax", {"x": ((2, 3), "fp32"), "axis": ((), "int32")}, {}, "iOS17", ["softmax", "'axis'"]),
]


@pytest.mark.parametrize("op,inputs,consts,target,words", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_bad_inputs_raise(op, inputs, consts, target, words):
    with pytest.raises(MILTypeError) as err:
        our_infer(op, inputs, consts, target)
    for w in words:
        assert w in str(err.value), (w, str(err.value))
