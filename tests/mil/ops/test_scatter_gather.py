"""Gather and scatter MIL ops checked against coremltools.

Each table row is one case; add a row to cover a new case.
- declaration: inputs and opset versions equal coremltools' op definitions;
- TYPE_CASES: output dtypes/shapes equal coremltools' (string dims are symbols; `_compare` checks
  which symbol each output dim is);
- VALUE_CASES: our kernel on runtime inputs equals coremltools' value inference on the same consts;
  REF_CASES: ops or modes coremltools cannot evaluate, against numpy (`ufunc.at` accumulates
  repeated indices the way the scatter modes do);
- ERROR_CASES: bad inputs raise MILTypeError naming the op and the input.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.mil.ops._compare import assert_same_types, check_values, ours_types, run
from tests.mil.ops._oracle import assert_same_declaration, ct_first_versions
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE

OPS = ["gather", "scatter", "gather_along_axis", "scatter_along_axis", "gather_nd", "scatter_nd"]

f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(2)


def rand(*shape, dtype=f32, lo=-3, hi=3):
    return _rng.uniform(lo, hi, size=shape).astype(dtype)


def ints(*shape, hi, dtype=i32, lo=0):
    return _rng.integers(lo, hi, size=shape).astype(dtype)


# -- declarations ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_first_versions(op)


@pytest.mark.parametrize("op", OPS)
def test_declarations_match_coremltools(op):
    for target in ct_first_versions(op):
        assert_same_declaration(op, target)


@pytest.mark.parametrize("op", OPS)
def test_has_docstring(op):
    assert all(len(s.doc) > 20 for s in CATALOGUE.versions(op))


# -- type inference ----------------------------------------------------------------------------

TYPE_CASES = [
    ("gather", {"x": (("n", 5, 4), "fp32"), "indices": ((2, 3), "int32")}, {"axis": 1}, "iOS15"),
    ("gather", {"x": (("n", 5, 4), "fp16"), "indices": (("k",), "int32")}, {"axis": -1}, "iOS15"),
    ("gather", {"x": ((5, 4), "int32")}, {"indices": i32(2)}, "iOS16"),  # scalar index drops the axis
    ("gather", {"x": (("n", 5, 4), "fp32"), "indices": (("n", 3), "int16")}, {"axis": 1, "batch_dims": 1}, "iOS16"),
    ("gather", {"x": ((5,), "int8"), "indices": ((3,), "uint8")}, {}, "iOS17"),
    ("gather", {"x": ((2, 5, 4), "uint16"), "indices": ((2, 4, 3), "int8")}, {"axis": 2, "batch_dims": 1}, "iOS17"),
    ("gather_along_axis", {"x": (("n", 5, 4), "fp32"), "indices": (("n", 2, 4), "int32")}, {"axis": 1}, "iOS15"),
    ("gather_along_axis", {"x": ((3, 5), "int32"), "indices": ((3, 7), "uint16")}, {"axis": -1}, "iOS16"),
    ("gather_along_axis", {"x": ((3, 5), "int8"), "indices": ((1, 5), "uint8")}, {}, "iOS17"),
    ("gather_nd", {"x": (("n", 5, 4), "fp32"), "indices": ((2, 2), "int32")}, {}, "iOS15"),
    ("gather_nd", {"x": ((3, 5, 4), "fp16"), "indices": (("k", 3), "int32")}, {}, "iOS15"),
    ("gather_nd", {"x": (("n", 5, 4), "fp32"), "indices": (("n", 7, 1), "int16")}, {"batch_dims": 1}, "iOS16"),
    ("gather_nd", {"x": ((2, 5, 4), "int16"), "indices": ((2, 3, 2), "int8")}, {"batch_dims": 1}, "iOS17"),
    ("scatter", {"data": (("n", 5), "fp32"), "indices": ((3,), "int32"), "updates": (("n", 3), "fp32")},
     {"axis": 1, "mode": "max"}, "iOS15"),
    ("scatter", {"data": ((4, 5), "int32"), "indices": ((2,), "int32"), "updates": ((2, 5), "int32")}, {}, "iOS17"),
    ("scatter_along_axis", {"data": (("n", 5), "fp32"), "indices": (("n", 3), "int32"),
                            "updates": (("n", 3), "fp32")}, {"axis": 1}, "iOS15"),
    ("scatter_along_axis", {"data": ((4, 5), "fp16"), "indices": ((2, 5), "int32"), "updates": ((2, 5), "fp16")},
     {"mode": "update", "validate_indices": True}, "iOS17"),
    ("scatter_nd", {"data": ((4, 5), "fp32"), "indices": ((3, 1), "int32"), "updates": ((3, 5), "fp32")},
     {"mode": "update"}, "iOS15"),
    ("scatter_nd", {"data": (("n", 5, 2), "int32"), "indices": (("k", 2), "int32"), "updates": (("k", 2), "int32")},
     {}, "iOS17"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES)
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_same_types(op, inputs, consts, target)


# -- kernel values -----------------------------------------------------------------------------

_X = rand(3, 5, 4)
VALUE_CASES = [
    ("gather", {"x": _X, "indices": i32([[0, 2, -1], [4, 4, 1]])}, {"axis": 1}, "iOS15"),
    ("gather", {"x": rand(5, 3, dtype=f16), "indices": i32([3, 0])}, {}, "iOS15"),
    ("gather", {"x": ints(5, 3, hi=9)}, {"indices": i32(-2), "axis": 0}, "iOS16"),
    ("gather", {"x": _X, "indices": ints(3, 2, hi=5, dtype=np.int16)}, {"axis": 1, "batch_dims": 1}, "iOS16"),
    ("gather", {"x": _X, "indices": ints(3, 5, 2, hi=4, dtype=np.uint16)}, {"axis": 2, "batch_dims": 2}, "iOS16"),
    ("gather", {"x": ints(4, 6, hi=100, dtype=np.int8), "indices": ints(2, 2, hi=6, dtype=np.uint8)},
     {"axis": -1, "validate_indices": True}, "iOS17"),
    ("gather_along_axis", {"x": _X, "indices": ints(3, 7, 4, hi=5)}, {"axis": 1}, "iOS15"),
    ("gather_along_axis", {"x": rand(3, 4, dtype=f16), "indices": ints(3, 4, hi=3, dtype=np.int16)}, {}, "iOS16"),
    ("gather_along_axis", {"x": ints(3, 4, hi=50, dtype=np.uint8), "indices": ints(3, 2, hi=4, dtype=np.int8)},
     {"axis": -1}, "iOS17"),
    ("scatter_along_axis", {"data": rand(3, 5), "indices": i32([[1, 4], [0, 2], [3, 3]]), "updates": rand(3, 2)},
     {"axis": 1, "mode": "update"}, "iOS15"),
    ("scatter_along_axis",
     {"data": rand(4, 3, dtype=f16), "indices": i32([[3, 0, 1]]), "updates": rand(1, 3, dtype=f16)},
     {"mode": "update", "validate_indices": True}, "iOS17"),
]


@pytest.mark.parametrize("op,runtime,consts,target", VALUE_CASES)
def test_values_match_coremltools(op, runtime, consts, target):
    check_values(op, runtime, consts, target)


_UFUNCS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "max": np.maximum,
           "min": np.minimum}


def _apply(out, where, updates, mode):
    if mode == "update":
        out[where] = updates
    else:
        _UFUNCS[mode].at(out, where, updates)
    return out


def _scatter(data, indices, updates, axis, mode):
    axis %= data.ndim
    d = np.moveaxis(data, axis, 0).copy()
    n = indices.size
    u = np.moveaxis(updates.reshape(data.shape[:axis] + (n,) + data.shape[axis + 1:]), axis, 0)
    idx = np.where(indices < 0, indices + data.shape[axis], indices).reshape(-1)
    return np.moveaxis(_apply(d, idx, u, mode), 0, axis)


def _scatter_along_axis(data, indices, updates, axis, mode):
    where = list(np.indices(indices.shape))
    where[axis % data.ndim] = indices
    return _apply(data.copy(), tuple(where), updates, mode)


def _scatter_nd(data, indices, updates, mode):
    return _apply(data.copy(), tuple(np.moveaxis(indices, -1, 0)), updates, mode)


def _gather_nd(x, indices, batch_dims=0):
    if batch_dims == 0:
        return x[tuple(np.moveaxis(indices, -1, 0))]
    return np.stack([_gather_nd(xb, ib, batch_dims - 1) for xb, ib in zip(x, indices)])


_D = rand(4, 5, lo=1, hi=3)
_DI = ints(4, 5, hi=20, lo=1)
_U = rand(4, 3, lo=1, hi=3)
_UI = ints(4, 3, hi=20, lo=1)
_REP = i32([1, 3, 1])  # a repeated index accumulates
_SA_IDX = i32([[0, 4, 0], [1, 1, 2], [3, 2, 2], [0, 1, 4]])
_ND_DATA = rand(3, 4, 2, lo=1, hi=3)
_ND_IDX = i32([[0, 1], [2, 3], [0, 1]])
_ND_UPD = rand(3, 2, lo=1, hi=3)

REF_CASES = [
    *[("scatter", {"data": _D, "indices": _REP, "updates": _U}, {"axis": 1, "mode": m}, "iOS15",
       _scatter(_D, _REP, _U, 1, m)) for m in ("add", "sub", "mul", "div", "max", "min")],
    ("scatter", {"data": _D, "indices": i32([2, 0, 1]), "updates": _U}, {"axis": -1, "mode": "update"}, "iOS17",
     _scatter(_D, i32([2, 0, 1]), _U, 1, "update")),
    ("scatter", {"data": _D, "indices": i32([[3], [-1]]), "updates": rand(2, 1, 5)}, {}, "iOS15", None),  # filled below
    ("scatter", {"data": _DI, "indices": _REP, "updates": _UI}, {"axis": 1},
     "iOS17", _scatter(_DI, _REP, _UI, 1, "add")),
    ("scatter", {"data": _D.astype(f16), "indices": _REP, "updates": _U.astype(f16)}, {"axis": 1, "mode": "mul"},
     "iOS17", _scatter(_D.astype(f16), _REP, _U.astype(f16), 1, "mul")),
    *[("scatter_along_axis", {"data": _D, "indices": _SA_IDX, "updates": rand(4, 3, lo=1, hi=3, dtype=f32)},
       {"axis": 1, "mode": m}, "iOS15", None) for m in ("add", "sub", "mul", "div", "max", "min")],
    ("scatter_along_axis", {"data": _DI, "indices": _SA_IDX, "updates": _UI}, {"axis": -1, "mode": "max"}, "iOS17",
     _scatter_along_axis(_DI, _SA_IDX, _UI, 1, "max")),
    *[("scatter_nd", {"data": _ND_DATA, "indices": _ND_IDX, "updates": _ND_UPD}, {"mode": m}, "iOS15",
       _scatter_nd(_ND_DATA, _ND_IDX, _ND_UPD, m)) for m in ("update", "add", "sub", "mul", "div", "max", "min")],
    ("scatter_nd", {"data": _DI, "indices": i32([[3], [0], [3]]), "updates": ints(3, 5, hi=9)},
     {"validate_indices": True}, "iOS17", None),
    ("gather_nd", {"x": _X, "indices": i32([[0, 1], [2, 4], [1, -1]])}, {}, "iOS15",
     _gather_nd(_X, i32([[0, 1], [2, 4], [1, 4]]))),
    ("gather_nd", {"x": _X.astype(f16), "indices": i32([[[2, 4, 3]], [[0, 0, 0]]])}, {}, "iOS16",
     _gather_nd(_X.astype(f16), i32([[[2, 4, 3]], [[0, 0, 0]]]))),
    ("gather_nd", {"x": _X, "indices": ints(3, 6, 1, hi=5, dtype=np.int16)}, {"batch_dims": 1}, "iOS16", None),
    ("gather_nd", {"x": ints(2, 3, 4, hi=9, dtype=np.int8), "indices": ints(2, 3, 2, 1, hi=4, dtype=np.uint8)},
     {"batch_dims": 2, "validate_indices": True}, "iOS17", None),
]


def _expected(op, runtime, consts):
    """Fill in the rows whose expectation depends on random inputs."""
    if op == "scatter":
        return _scatter(runtime["data"], runtime["indices"], runtime["updates"], consts.get("axis", 0),
                        consts.get("mode", "add"))
    if op == "scatter_along_axis":
        return _scatter_along_axis(runtime["data"], runtime["indices"], runtime["updates"], consts["axis"],
                                   consts["mode"])
    if op == "scatter_nd":
        return _scatter_nd(runtime["data"], runtime["indices"], runtime["updates"], consts.get("mode", "add"))
    return _gather_nd(runtime["x"], runtime["indices"].astype(np.int64), consts.get("batch_dims", 0))


@pytest.mark.parametrize("op,runtime,consts,target,expected", REF_CASES)
def test_values_match_reference(op, runtime, consts, target, expected):
    if expected is None:
        expected = _expected(op, runtime, consts)
    check_values(op, runtime, consts, target, expected=expected)


def test_out_of_range_index_fails_at_run_time_when_validated():
    with pytest.raises(IndexError, match="gather"):
        run("gather", {"x": rand(3, 2), "indices": i32([3])}, {"validate_indices": True}, "iOS17")
    with pytest.raises(IndexError, match="scatter_nd"):
        run("scatter_nd", {"data": rand(3, 2), "indices": i32([[0, 2]]), "updates": rand(1)},
            {"validate_indices": True}, "iOS17")


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    # (op, inputs, consts, target, the input the message must name)
    ("gather", {"x": ((3, 4), "int8"), "indices": ((2,), "int32")}, {}, "iOS16", "x"),  # int8 x is iOS17+
    ("gather", {"x": ((3, 4), "fp32"), "indices": ((2,), "int16")}, {}, "iOS15", "indices"),  # int16 is iOS16+
    ("gather", {"x": ((3, 4), "fp32"), "indices": ((2,), "fp32")}, {}, "iOS17", "indices"),
    ("gather", {"x": ((3, 4), "fp32")}, {}, "iOS17", "indices"),
    ("gather", {"x": ((3, 4), "fp32"), "indices": ((2,), "int32"), "axis": ((), "int32")}, {}, "iOS17", "axis"),
    ("gather", {"x": ((3, 4), "fp32"), "indices": ((2,), "int32")}, {"axis": 2}, "iOS17", "axis"),
    ("gather", {"x": ((3, 4), "fp32"), "indices": ((3, 2), "int32")}, {"axis": 0, "batch_dims": 1},
     "iOS17", "batch_dims"),
    ("gather", {"x": ((3, 4), "fp32")}, {"indices": i32([0, 3]), "validate_indices": True}, "iOS17", "indices"),
    ("gather", {"x": ((3, 4), "fp32"), "indices": ((2,), "int32")}, {"batch_dims": 0}, "iOS15", "batch_dims"),
    ("gather_along_axis", {"x": ((3, 4), "fp32"), "indices": ((3,), "int32")}, {}, "iOS17", "indices"),
    ("gather_along_axis", {"x": ((3, 4), "fp32"), "indices": ((3, 2), "int32")}, {"axis": 0}, "iOS17", "indices"),
    ("gather_along_axis", {"x": ((3, 4), "fp32")}, {"indices": i32([[0], [5], [1]]), "axis": 1,
                                                    "validate_indices": True}, "iOS17", "indices"),
    ("gather_nd", {"x": ((3, 4), "fp32"), "indices": ((2, 3), "int32")}, {}, "iOS17", "indices"),
    ("gather_nd", {"x": ((3, 4), "fp32"), "indices": ((2, "k"), "int32")}, {}, "iOS17", "indices"),
    ("gather_nd", {"x": ((3, 4), "fp32")}, {"indices": i32([[0, 4]]), "validate_indices": True}, "iOS17", "indices"),
    ("scatter", {"data": ((3, 4), "fp32"), "indices": ((2,), "int32"), "updates": ((2, 4), "fp16")}, {},
     "iOS17", "updates"),
    ("scatter", {"data": ((3, 4), "fp32"), "indices": ((2,), "int32"), "updates": ((3, 4), "fp32")}, {},
     "iOS17", "updates"),
    ("scatter", {"data": ((3, 4), "fp32"), "indices": ((2,), "int32"), "updates": ((2, 4), "fp32")},
     {"mode": "xor"}, "iOS17", "mode"),
    ("scatter", {"data": ((3, 4), "fp32"), "indices": ((2,), "int16"), "updates": ((2, 4), "fp32")}, {},
     "iOS17", "indices"),
    ("scatter", {"data": ((3, 4), "fp32"), "indices": ((2,), "int32"), "updates": ((2, 4), "fp32"),
                 "mode": ((), "string")}, {}, "iOS17", "mode"),
    ("scatter_along_axis", {"data": ((3, 4), "fp32"), "indices": ((3, 2), "int32"), "updates": ((3, 3), "fp32")},
     {"axis": 1}, "iOS17", "updates"),
    ("scatter_nd", {"data": ((3, 4), "fp32"), "indices": ((2, 1), "int32"), "updates": ((2,), "fp32")},
     {}, "iOS17", "updates"),
    ("scatter_nd", {"data": ((3, 4), "fp32"), "updates": ((2, 4), "fp32")}, {}, "iOS17", "indices"),
    ("scatter_nd", {"data": ((3, 4), "bool"), "indices": ((2, 1), "int32"), "updates": ((2, 4), "bool")},
     {}, "iOS17", "data"),
]


@pytest.mark.parametrize("op,inputs,consts,target,name", ERROR_CASES)
def test_bad_inputs_raise(op, inputs, consts, target, name):
    with pytest.raises(MILTypeError, match=rf"MIL op {op}\b.*{name}"):
        ours_types(op, inputs, consts, target)


@pytest.mark.parametrize("op", OPS)
def test_missing_required_input_is_named(op):
    for spec in CATALOGUE.versions(op):
        first = next(i.name for i in spec.inputs if not i.optional)
        _, b = new_function("main", {}, spec.since)
        with pytest.raises(MILTypeError, match=rf"MIL op {op}\b.*required input '{first}' is missing"):
            b.add_op(op, {})
