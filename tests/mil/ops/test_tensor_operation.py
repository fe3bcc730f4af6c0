"""Tensor-operation MIL ops (fill, pad, concat, split, topk, non_maximum_suppression, ...) checked
against coremltools.

Each table row is one case; add a row to cover a new case.
- declaration: inputs and opset versions equal coremltools' op definitions;
- TYPE_CASES: output dtypes/shapes equal coremltools' (string dims are symbols; `_compare` checks
  which symbol each output dim is);
- VALUE_CASES: our kernel on runtime inputs equals coremltools' value inference on the same consts;
  REF_CASES: ops or settings coremltools cannot evaluate, against expectations written here;
- OUR_TYPE_CASES: shapes where coremltools' inference is known to be wrong (reason given);
- ERROR_CASES: bad inputs raise MILTypeError naming the op and the input.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.mil.ops._compare import assert_same_types, check_values, loose_declarations, ours_types, run
from tests.mil.ops._oracle import assert_same_declaration, ct_first_versions
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE

OPS = ["band_part", "cumsum", "fill", "non_maximum_suppression", "non_zero", "one_hot", "pad", "range_1d",
       "tile", "argsort", "topk", "flatten2d", "shape", "concat", "split", "stack", "identity", "fill_like"]
TUPLE_OPS = {"concat", "stack", "identity"}

f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(1)

# coremltools' range_1d value inference compares an fp16 length with a limit beyond the fp16 range.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def rand(*shape, dtype=f32):
    return _rng.uniform(-3, 3, size=shape).astype(dtype)


def distinct(*shape, dtype=f32):
    """Values without ties (sort results are then unique)."""
    return (_rng.permutation(int(np.prod(shape))).reshape(shape) - 5).astype(dtype)


# -- declarations ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_first_versions(op)


@pytest.mark.parametrize("op", OPS)
def test_declarations_match_coremltools(op):
    for target in ct_first_versions(op):
        if op in TUPLE_OPS:
            ours, theirs = loose_declarations(op, target)
            assert ours == theirs
        else:
            assert_same_declaration(op, target)


@pytest.mark.parametrize("op", OPS)
def test_has_docstring(op):
    assert all(len(s.doc) > 20 for s in CATALOGUE.versions(op))


# -- type inference ----------------------------------------------------------------------------

_NMS15 = {"boxes": (("n", 10, 4), "fp32"), "scores": (("n", 10, 3), "fp32")}
_NMS17 = {"boxes": (("n", 4, 10), "fp16"), "scores": (("n", 3, 10), "fp16")}

TYPE_CASES = [
    ("band_part", {"x": (("n", 3, 4), "fp32")}, {"lower": 1}, "iOS15"),
    ("band_part", {"x": ((3, 4), "bool")}, {}, "iOS17"),
    ("cumsum", {"x": (("n", 3), "int32")}, {"axis": -1, "exclusive": True}, "iOS15"),
    ("cumsum", {"x": ((2, 3), "fp16")}, {}, "iOS17"),
    ("fill", {"shape": ((3,), "int32")}, {"value": f32(2)}, "iOS15"),
    ("fill", {}, {"shape": i32([2, 3]), "value": True}, "iOS15"),
    ("fill", {}, {"shape": i32([2, 3])}, "iOS17"),  # default value 0.0 is fp32
    ("fill_like", {"ref_tensor": (("n", 3), "int32")}, {"value": f16(2)}, "iOS16"),
    ("fill_like", {"ref_tensor": (("n", 3), "bool")}, {}, "iOS17"),
    ("non_zero", {"x": (("n", 3), "fp32")}, {}, "iOS15"),
    ("non_zero", {}, {"x": i32([[0, 1, 2], [3, 0, 0]])}, "iOS17"),  # const input: count known
    ("one_hot", {"indices": (("n", 3), "int32")}, {"one_hot_vector_size": 5, "axis": 1, "on_value": f32(2),
                                                  "off_value": f32(-1)}, "iOS15"),
    ("one_hot", {"indices": ((4,), "int32"), "one_hot_vector_size": ((1,), "int32")}, {}, "iOS15"),
    ("pad", {"x": (("n", 3, 4), "fp32")}, {"pad": i32([1, 2, 0, 3]), "mode": "reflect"}, "iOS15"),
    ("pad", {"x": (("n", 3, 4), "fp32")}, {"pad": i32([1, 1, 0, 0, 2, 3]), "constant_val": f32(5)}, "iOS15"),
    ("pad", {"x": (("n", 3, 4), "fp16"), "pad": ((6,), "int32")}, {}, "iOS17"),
    ("range_1d", {}, {"start": f32(0), "end": f32(2.5), "step": f32(0.5)}, "iOS15"),
    ("range_1d", {}, {"start": i32(10), "end": i32(1), "step": i32(-3)}, "iOS17"),
    ("range_1d", {"end": ((1,), "int32")}, {"start": i32(0), "step": i32(1)}, "iOS15"),
    ("tile", {"x": (("n", 3), "fp32")}, {"reps": i32([1, 2])}, "iOS15"),
    ("tile", {"x": (("n", 3), "bool"), "reps": ((2,), "int32")}, {}, "iOS17"),
    ("argsort", {"x": (("n", 3), "fp32")}, {"axis": 0}, "iOS15"),
    ("argsort", {"x": ((4, 3), "int32")}, {"ascending": True}, "iOS17"),
    ("topk", {"x": (("n", 5), "fp32")}, {"k": 2}, "iOS15"),
    ("topk", {"x": ((4, 5), "fp16")}, {}, "iOS15"),
    ("topk", {"x": (("n", 5), "int32")}, {"k": 2, "return_indices": False}, "iOS16"),
    ("topk", {"x": (("n", 5), "int8")}, {"k": np.int8(2), "output_indices_dtype": "uint16", "axis": 1}, "iOS17"),
    ("topk", {"x": ((3, "n"), "uint16")}, {"k": np.int16(3), "axis": 0, "ascending": True}, "iOS17"),
    ("flatten2d", {"x": ((2, 3, 4), "fp32")}, {"axis": -1}, "iOS15"),
    ("flatten2d", {"x": (("n", 3, 4), "fp32")}, {}, "iOS15"),
    ("flatten2d", {"x": (("n", 1, 1), "bool")}, {"axis": 3}, "iOS17"),
    ("flatten2d", {"x": ((3,), "fp32")}, {"axis": 0}, "iOS17"),
    ("shape", {"x": (("n", 3, 4), "bool")}, {}, "iOS15"),
    ("concat", {"values": [(("n", 2), "fp32"), (("n", 3), "fp32")]}, {"axis": 1}, "iOS15"),
    ("concat", {"values": [((4, 2), "int32"), (("m", 2), "int32")]}, {"axis": 0}, "iOS15"),
    ("concat", {"values": [(("n", 2), "fp16"), (("n", 2), "fp16")]}, {"axis": -1, "interleave": True}, "iOS17"),
    ("concat", {"values": [((2, 2), "bool")] * 3}, {"axis": -2}, "iOS17"),
    ("stack", {"values": [(("n", 2), "int32"), (("n", 2), "int32")]}, {"axis": -1}, "iOS15"),
    ("stack", {"values": [((3,), "fp16")] * 4}, {"axis": 0}, "iOS17"),
    ("split", {"x": (("n", 6), "fp32")}, {"axis": 1, "num_splits": 3}, "iOS15"),
    ("split", {"x": (("n", 6), "bool")}, {"axis": -1, "split_sizes": i32([1, 5])}, "iOS15"),
    ("split", {"x": (("n", 6), "fp32")}, {"axis": 0, "num_splits": 2}, "iOS15"),
    ("split", {"x": ((4, 6), "int32")}, {"axis": 0, "num_splits": 2, "split_sizes": i32([3, 1])}, "iOS17"),
    ("identity", {"x": (("n", 6), "fp32")}, {}, "iOS15"),
    ("non_maximum_suppression", _NMS15, {"iou_threshold": f32(0.5), "score_threshold": f32(0.1), "max_boxes": 5},
     "iOS15"),
    ("non_maximum_suppression", _NMS17, {"iou_threshold": f16(0.5), "max_boxes": 5, "per_class_suppression": True},
     "iOS17"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES)
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_same_types(op, inputs, consts, target)


OUR_TYPE_CASES = [
    # coremltools' iOS17 topk writes -1 into the shape instead of selecting the whole axis.
    ("topk", {"x": (("n", 5), "fp32")}, {"k": -1}, "iOS17", [("fp32", ("n", 5)), ("int32", ("n", 5))]),
    # a runtime shape for fill gets one fresh symbol per entry; a symbolic even split shares one.
    ("split", {"x": (("n", 6), "fp32")}, {"axis": 0, "num_splits": 1}, "iOS17", [("fp32", ("n", 6))]),
]


@pytest.mark.parametrize("op,inputs,consts,target,expected", OUR_TYPE_CASES)
def test_type_inference_where_coremltools_differs(op, inputs, consts, target, expected):
    assert ours_types(op, inputs, consts, target) == expected


def test_even_split_of_symbolic_dim_shares_one_symbol():
    from torch_coreml.mil.builder import new_function
    from torch_coreml.mil.types import Symbol, tensor

    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 6))}, "iOS17")
    a, c = b.op("split", x=fn.inputs[0], axis=0, num_splits=2)
    assert a.shape[0] == c.shape[0] and isinstance(a.shape[0], Symbol) and a.shape[0] != Symbol("n")


# -- kernel values -----------------------------------------------------------------------------

_X = rand(3, 4)
VALUE_CASES = [
    ("band_part", {"x": rand(2, 4, 5)}, {"lower": 1, "upper": 0}, "iOS15"),
    ("band_part", {"x": rand(4, 5, dtype=f16)}, {}, "iOS17"),
    ("band_part", {"x": distinct(3, 4, dtype=i32)}, {"lower": 0, "upper": 2}, "iOS15"),
    ("cumsum", {"x": rand(3, 4)}, {"axis": -1}, "iOS15"),
    ("cumsum", {"x": distinct(3, 4, dtype=i32)}, {"axis": 0, "reverse": True}, "iOS17"),
    ("cumsum", {"x": rand(5, dtype=f16)}, {}, "iOS15"),
    ("fill", {"shape": i32([2, 3])}, {"value": f32(1.5)}, "iOS15"),
    ("fill", {"shape": i32([2, 1, 2])}, {"value": i32(7)}, "iOS17"),
    ("fill", {"shape": i32([4])}, {}, "iOS15"),
    ("fill", {"shape": i32([2])}, {"value": True}, "iOS17"),
    ("fill_like", {"ref_tensor": rand(2, 3)}, {"value": f16(2.5)}, "iOS16"),
    ("fill_like", {"ref_tensor": np.zeros((2, 3), bool)}, {}, "iOS17"),
    ("non_zero", {"x": f32([[0, 1, 2], [3, 0, 0]])}, {}, "iOS15"),
    ("non_zero", {"x": np.array([[True, False], [False, True]])}, {}, "iOS17"),
    ("pad", {"x": rand(2, 3, 4)}, {"pad": i32([1, 2, 0, 3])}, "iOS15"),
    ("pad", {"x": rand(2, 3, 4, dtype=f16)}, {"pad": i32([1, 2, 0, 3]), "mode": "reflect"}, "iOS15"),
    ("pad", {"x": rand(2, 3, 4)}, {"pad": i32([0, 1, 2, 1, 3, 4]), "mode": "replicate"}, "iOS17"),
    ("pad", {"x": rand(2, 3), "pad": i32([1, 0, 2, 2])}, {"constant_val": f32(-4), "mode": "constant"}, "iOS17"),
    ("pad", {"x": rand(3, 4, dtype=f16)}, {"pad": i32([2, 1]), "mode": "reflect"}, "iOS17"),
    ("range_1d", {"start": f32(0.5), "end": f32(3), "step": f32(0.25)}, {}, "iOS15"),
    ("range_1d", {"start": i32(10), "end": i32(1), "step": i32(-3)}, {}, "iOS17"),
    ("range_1d", {"end": f16(2.0)}, {"start": f16(-1.0), "step": f16(0.5)}, "iOS17"),
    ("tile", {"x": rand(2, 3)}, {"reps": i32([2, 1])}, "iOS15"),
    ("tile", {"x": np.array([[True, False]]), "reps": i32([3, 2])}, {}, "iOS17"),
    ("argsort", {"x": distinct(3, 4)}, {}, "iOS15"),
    ("argsort", {"x": distinct(3, 4, dtype=i32)}, {"axis": 0, "ascending": True}, "iOS17"),
    ("argsort", {"x": distinct(5, dtype=f16)}, {"axis": -1}, "iOS17"),
    ("topk", {"x": distinct(3, 5)}, {"k": 2}, "iOS15"),
    ("topk", {"x": distinct(3, 5, dtype=i32)}, {"k": 3, "axis": 0, "ascending": True}, "iOS15"),
    ("topk", {"x": distinct(3, 5, dtype=f16)}, {"k": 2, "return_indices": False}, "iOS16"),
    ("topk", {"x": distinct(3, 5)}, {"k": 2, "output_indices_dtype": "uint16"}, "iOS17"),
    ("topk", {"x": distinct(3, 5, dtype=np.int8)}, {"k": np.int8(1), "axis": 0}, "iOS17"),
    ("flatten2d", {"x": rand(2, 3, 4)}, {}, "iOS15"),
    ("flatten2d", {"x": rand(2, 3, 4)}, {"axis": -1}, "iOS17"),
    ("shape", {"x": rand(2, 3, 4)}, {}, "iOS15"),
    ("concat", {}, {"values": [rand(2, 3), rand(2, 1)], "axis": -1}, "iOS15"),
    ("concat", {}, {"values": [distinct(2, 3, dtype=i32), distinct(1, 3, dtype=i32)], "axis": 0}, "iOS17"),
    ("split", {"x": rand(4, 6)}, {"axis": 1, "num_splits": 3}, "iOS15"),
    ("split", {"x": distinct(4, 6, dtype=i32)}, {"axis": -2, "split_sizes": i32([1, 3])}, "iOS17"),
    ("split", {"x": rand(4, 6, dtype=f16)}, {"axis": 0, "num_splits": 1}, "iOS17"),
    ("stack", {}, {"values": [rand(2, 3), rand(2, 3)], "axis": -1}, "iOS15"),
    ("stack", {}, {"values": [distinct(3, dtype=i32), distinct(3, dtype=i32)], "axis": 0}, "iOS17"),
    ("identity", {"x": rand(2, 3)}, {}, "iOS15"),
]


@pytest.mark.parametrize("op,runtime,consts,target", VALUE_CASES)
def test_values_match_coremltools(op, runtime, consts, target):
    check_values(op, runtime, consts, target)


def _exclusive_cumsum(x, axis, reverse=False):
    y = np.flip(x, axis) if reverse else x
    out = np.cumsum(y, axis) - y
    return np.flip(out, axis) if reverse else out


def _one_hot(indices, depth, axis, on, off):
    out = np.where(np.arange(depth) == indices[..., None], on, off)
    return np.moveaxis(out, -1, axis)


_C = rand(3, 4)
_CI = distinct(2, 5, dtype=i32)
_IDX = i32([[0, 3], [1, 5]])
_IL = rand(2, 2, 2, dtype=f16)
_IL3 = rand(3, 3, 2)  # 5 is out of range: an all-off vector

REF_CASES = [
    # coremltools' value inference breaks on exclusive=True.
    ("cumsum", {"x": _C}, {"axis": 1, "exclusive": True}, "iOS15", _exclusive_cumsum(_C, 1)),
    ("cumsum", {"x": _CI}, {"axis": -1, "exclusive": True, "reverse": True}, "iOS17", _exclusive_cumsum(_CI, 1, True)),
    ("one_hot", {"indices": _IDX}, {"one_hot_vector_size": 4}, "iOS15", _one_hot(_IDX, 4, 2, 1, 0)),
    ("one_hot", {"indices": _IDX, "one_hot_vector_size": i32([4])},
     {"axis": 0, "on_value": f16(2), "off_value": f16(-1)}, "iOS17", _one_hot(_IDX, 4, 0, 2, -1).astype(f16)),
    ("one_hot", {"indices": i32([2, 0])}, {"one_hot_vector_size": 3, "axis": -2, "on_value": True, "off_value": False},
     "iOS17", _one_hot(i32([2, 0]), 3, 0, True, False)),
    # k = -1 (iOS17): coremltools' value inference slices off the last element instead.
    ("topk", {"x": f32([[3, 1, 2]])}, {"k": -1}, "iOS17", [f32([[3, 2, 1]]), i32([[0, 2, 1]])]),
    # ties keep their original order
    ("topk", {"x": f32([1, 2, 2, 0, 2])}, {"k": 2}, "iOS15", [f32([2, 2]), i32([1, 2])]),
    ("concat", {}, {"values": [f32(1), f32(2)], "axis": 0}, "iOS15", f32([1, 2])),
    # coremltools' value inference ignores interleave, and fails on flatten2d with axis 0.
    ("concat", {}, {"values": [_IL[0], _IL[1]], "axis": 1, "interleave": True}, "iOS17",
     np.stack([_IL[0], _IL[1]], 2).reshape(2, 4)),
    ("concat", {}, {"values": list(_IL3), "axis": 0, "interleave": True}, "iOS17",
     np.stack(list(_IL3), 1).reshape(9, 2)),
    ("flatten2d", {"x": _CI}, {"axis": 0}, "iOS17", _CI.reshape(1, 10)),
]


@pytest.mark.parametrize("op,runtime,consts,target,expected", REF_CASES)
def test_values_match_reference(op, runtime, consts, target, expected):
    check_values(op, runtime, consts, target, expected=expected)


# -- non_maximum_suppression: hand-made scenes with known answers ------------------------------

# (x_center, y_center, width, height); box 1 overlaps box 0 (IoU 0.9), box 2 is far away, box 3 is
# box 0 again with a score below the threshold, box 4 overlaps box 2 a little (IoU 0.2).
_BOXES = f32([[1, 1, 2, 2], [1.1, 1, 2, 2], [6, 6, 2, 2], [1, 1, 2, 2], [7.333333, 6, 2, 2]])
_SCORES = f32([[0.9, 0.0], [0.1, 0.8], [0.7, 0.1], [0.05, 0.0], [0.6, 0.2]])  # 2 classes


@pytest.mark.parametrize("per_class,max_boxes,expected", [
    (False, 5, [0, 2, 4, -1, -1]),  # 1 is suppressed by 0; 3 is below the score threshold
    (True, 5, [0, 1, 2, 4, -1]),  # 1's best class differs from 0's, so it survives
    (False, 2, [0, 2]),
])
@pytest.mark.parametrize("dtype", [f32, f16])
def test_nms_ios15(per_class, max_boxes, expected, dtype):
    boxes, scores = _BOXES[None].astype(dtype), _SCORES[None].astype(dtype)
    (ob, os_, oi, count), types = run("non_maximum_suppression", {"boxes": boxes, "scores": scores},
                                      {"iou_threshold": dtype(0.5), "score_threshold": dtype(0.1),
                                       "max_boxes": max_boxes, "per_class_suppression": per_class}, "iOS15")
    assert [t.dtype.name for t in types] == [np.dtype(dtype).name.replace("float", "fp")] * 2 + ["int32"] * 2
    np.testing.assert_array_equal(oi[0], expected)
    kept = [i for i in expected if i >= 0]
    assert count.tolist() == [len(kept)]
    np.testing.assert_array_equal(ob[0, :len(kept)], boxes[0, kept])
    np.testing.assert_array_equal(os_[0, :len(kept)], scores[0, kept])
    assert not ob[0, len(kept):].any() and not os_[0, len(kept):].any()


def test_nms_ios17_boxes_last_and_no_score_threshold():
    boxes = np.stack([_BOXES, _BOXES[::-1]]).transpose(0, 2, 1)  # [2, 4, 5]
    scores = np.stack([_SCORES, _SCORES[::-1]]).transpose(0, 2, 1)  # [2, 2, 5]
    (ob, os_, oi), _ = run("non_maximum_suppression", {"boxes": boxes, "scores": scores},
                           {"iou_threshold": f32(0.5), "max_boxes": 4}, "iOS17")
    # box 3 has no score threshold to fall below, but it is box 0 again and so suppressed (IoU 1)
    np.testing.assert_array_equal(oi, [[0, 2, 4, -1], [4, 2, 0, -1]])
    np.testing.assert_array_equal(ob[0, :, :3], boxes[0][:, [0, 2, 4]])
    np.testing.assert_array_equal(os_[1, :, :3], scores[1][:, [4, 2, 0]])


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    # (op, inputs, consts, target, the input the message must name)
    ("band_part", {"x": ((3, 4), "int8")}, {}, "iOS17", "x"),
    ("band_part", {"x": ((3, 4), "fp32"), "lower": ((), "int32")}, {}, "iOS17", "lower"),
    ("cumsum", {"x": ((3, 4), "bool")}, {}, "iOS17", "x"),
    ("cumsum", {"x": ((3, 4), "fp32")}, {"axis": 2}, "iOS17", "axis"),
    ("fill", {}, {"value": f32(1)}, "iOS17", "shape"),
    ("fill", {"shape": ((2,), "int32"), "value": ((), "fp32")}, {}, "iOS17", "value"),
    ("fill_like", {"ref_tensor": ((2,), "int8")}, {}, "iOS17", "ref_tensor"),
    ("non_zero", {"x": ((2,), "int8")}, {}, "iOS17", "x"),
    ("one_hot", {"indices": ((2,), "int32")}, {}, "iOS17", "one_hot_vector_size"),
    ("one_hot", {"indices": ((2,), "int32")}, {"one_hot_vector_size": 3, "on_value": f32(1), "off_value": i32(0)},
     "iOS17", "off_value"),
    ("pad", {"x": ((2, 3), "int32")}, {"pad": i32([1, 1])}, "iOS17", "x"),
    ("pad", {"x": ((2, 3), "fp32")}, {"pad": i32([1, 1]), "mode": "wrap"}, "iOS17", "mode"),
    ("pad", {"x": ((2, 3), "fp32")}, {"pad": i32([3, 0]), "mode": "reflect"}, "iOS17", "pad"),
    ("pad", {"x": ((2, 3), "fp32"), "pad": ((2,), "int32")}, {}, "iOS17", "pad"),
    ("range_1d", {}, {"start": i32(0), "end": f32(3), "step": i32(1)}, "iOS17", "end"),
    ("range_1d", {}, {"start": i32(0), "end": i32(3), "step": i32(0)}, "iOS17", "step"),
    ("tile", {"x": ((2, 3), "fp32")}, {"reps": i32([2])}, "iOS17", "reps"),
    ("argsort", {"x": ((2, 3), "bool")}, {}, "iOS17", "x"),
    ("topk", {"x": ((2, 3), "int8")}, {}, "iOS16", "x"),  # int8 is iOS17+
    ("topk", {"x": ((2, 3), "fp32")}, {"k": 4}, "iOS17", "k"),
    ("topk", {"x": ((2, 3), "fp32")}, {"k": np.int8(1)}, "iOS16", "k"),
    ("topk", {"x": ((2, 3), "fp32"), "k": ((), "int32")}, {}, "iOS17", "k"),
    ("topk", {"x": ((2, 3), "fp32")}, {"return_indices": False, "output_indices_dtype": "int32"}, "iOS17",
     "output_indices_dtype"),
    ("topk", {"x": ((2, 3), "fp32")}, {"output_indices_dtype": "int8"}, "iOS17", "output_indices_dtype"),
    ("topk", {"x": ((2, 3), "fp32")}, {"sort": False}, "iOS15", "sort"),  # sort is iOS16+
    ("flatten2d", {"x": ((2, 3), "fp32")}, {"axis": 3}, "iOS17", "axis"),
    ("shape", {"x": ((2, 3), "int8")}, {}, "iOS17", "x"),
    ("concat", {"values": [((2, 3), "fp32"), ((2, 3), "fp16")]}, {"axis": 0}, "iOS17", "values"),
    ("concat", {"values": [((2, 3), "fp32"), ((2, 4), "fp32")]}, {"axis": 0}, "iOS17", "values"),
    ("concat", {"values": [((2, 3), "fp32")]}, {}, "iOS17", "axis"),
    ("concat", {"values": [((2, 3), "fp32"), ((2, 4), "fp32")]}, {"axis": 1, "interleave": True}, "iOS17", "values"),
    ("stack", {"values": [((2, 3), "fp32"), ((3, 2), "fp32")]}, {"axis": 0}, "iOS17", "values"),
    ("split", {"x": ((2, 3), "fp32")}, {"axis": 1}, "iOS17", "num_splits"),
    ("split", {"x": ((2, 3), "fp32")}, {"axis": 1, "num_splits": 2}, "iOS17", "num_splits"),
    ("split", {"x": ((2, 3), "fp32")}, {"axis": 1, "split_sizes": i32([1, 1])}, "iOS17", "split_sizes"),
    ("non_maximum_suppression", {"boxes": ((1, 5, 4), "fp32"), "scores": ((1, 5, 2), "fp32")},
     {"iou_threshold": f32(0.5), "max_boxes": 2}, "iOS15", "score_threshold"),
    ("non_maximum_suppression", {"boxes": ((1, 5, 4), "fp32"), "scores": ((1, 5, 2), "fp32"),
                                 "iou_threshold": ((), "fp32")}, {"max_boxes": 2}, "iOS17", "iou_threshold"),
    ("non_maximum_suppression", {"boxes": ((1, 5, 4), "fp32"), "scores": ((1, 5, 2), "fp16")},
     {"iou_threshold": f32(0.5), "max_boxes": 2}, "iOS17", "scores"),
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
