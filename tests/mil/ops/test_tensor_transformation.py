"""Tensor-transformation MIL ops (reshape, slicing, re-blocking, ...) checked against coremltools.

Each table row is one case; add a row to cover a new case.
- declaration: inputs and opset versions equal coremltools' op definitions;
- TYPE_CASES: output dtypes/shapes equal coremltools' (string dims are symbols; `_compare` checks
  which symbol each output dim is);
- VALUE_CASES: our kernel on runtime inputs equals coremltools' value inference on the same consts;
  REF_CASES: ops coremltools cannot evaluate, against numpy formulas written here;
- OUR_TYPE_CASES: shapes where coremltools' inference is known to be wrong or absent (reason given);
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

OPS = ["depth_to_space", "expand_dims", "reshape", "reverse", "reverse_sequence", "slice_by_index",
       "slice_by_size", "space_to_depth", "space_to_batch", "batch_to_space", "squeeze", "transpose",
       "pixel_shuffle", "sliding_windows", "reshape_like", "pixel_unshuffle", "slice_update"]
TUPLE_OPS = {"reshape_like"}

f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(0)


def rand(*shape, dtype=f32):
    return _rng.uniform(-3, 3, size=shape).astype(dtype)


def seq(*shape, dtype=f32):
    return np.arange(np.prod(shape)).reshape(shape).astype(dtype)


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

TYPE_CASES = [
    ("depth_to_space", {"x": ((1, 8, 2, 3), "fp32")}, {"block_size": 2}, "iOS15"),
    ("depth_to_space", {"x": (("n", 8, "h", 3), "fp16")}, {"block_size": 2}, "iOS17"),
    ("space_to_depth", {"x": (("n", 2, 4, 6), "fp32")}, {"block_size": 2}, "iOS15"),
    ("pixel_shuffle", {"x": (("n", 8, 2, 3), "fp16")}, {"upscale_factor": 2}, "iOS15"),
    ("pixel_unshuffle", {"x": (("n", 2, 4, 6), "fp32")}, {"downscale_factor": np.uint32(2)}, "iOS16"),
    ("space_to_batch", {"x": ((2, 1, 2, 4), "fp32")},
     {"block_shape": i32([2, 2]), "paddings": i32([[0, 0], [2, 0]])}, "iOS15"),
    ("space_to_batch", {"x": ((2, 3, 4, 6), "fp16")},
     {"block_shape": i32([2, 3]), "paddings": i32([[1, 1], [0, 0]])}, "iOS17"),
    ("space_to_batch", {"x": (("n", 1, "h", 4), "fp32")},
     {"block_shape": i32([2, 2]), "paddings": i32([[0, 0], [2, 0]])}, "iOS17"),
    ("batch_to_space", {"x": (("n", 1, 1, "w"), "fp32")},
     {"block_shape": i32([2, 2]), "crops": i32([[0, 0], [0, 0]])}, "iOS17"),
    ("batch_to_space", {"x": ((8, 1, 1, 3), "fp32")}, {"block_shape": i32([2, 2]), "crops": i32([[0, 0], [2, 0]])},
     "iOS15"),
    ("expand_dims", {"x": (("n", 3), "int32")}, {"axes": i32([0, -1])}, "iOS15"),
    ("expand_dims", {"x": ((2, 3), "bool")}, {"axes": i32([1, 3])}, "iOS15"),
    ("expand_dims", {"x": (("n", 3), "int8")}, {"axes": i32([-2])}, "iOS17"),
    ("squeeze", {"x": ((1, "n", 1, 3), "fp32")}, {}, "iOS15"),
    ("squeeze", {"x": ((1, "n", 1, 3), "bool")}, {"axes": i32([0, -2])}, "iOS17"),
    ("squeeze", {"x": ((1, 2, 3), "fp32")}, {"axes": i32([0, 1])}, "iOS17"),  # non-1 dims are kept
    ("squeeze", {"x": ((1, 1), "uint8")}, {}, "iOS17"),  # down to a scalar
    ("transpose", {"x": (("n", 3, 4), "fp32")}, {"perm": i32([2, 0, 1])}, "iOS15"),
    ("transpose", {"x": (("n", 3, 4), "int16")}, {"perm": i32([-1, 0, 1])}, "iOS17"),
    ("sliding_windows", {"x": ((2, 10, 3), "fp32")}, {"axis": -2, "size": 3, "stride": 2}, "iOS15"),
    ("sliding_windows", {"x": (("n", 10), "int32")}, {"axis": 1, "size": 4}, "iOS15"),
    ("sliding_windows", {"x": (("n", 10), "bool")}, {"axis": 0, "size": 1}, "iOS17"),
    ("reshape", {"x": ((2, 3, 4), "fp32")}, {"shape": i32([0, 0, -1])}, "iOS15"),
    ("reshape", {"x": ((2, 3, 4), "fp16")}, {"shape": i32([4, -1])}, "iOS15"),
    ("reshape", {"x": ((2, 50), "fp32")}, {"shape": i32([1, 0, -1, 0])}, "iOS17"),
    ("reshape", {"x": ((2, 50), "int8")}, {"shape": np.int8([-1, 10])}, "iOS17"),
    ("reshape", {"x": (("n", 3, 4), "fp32"), "shape": ((3,), "int32")}, {}, "iOS15"),  # runtime shape
    ("reshape", {"x": (("n", 3, 4), "fp32")}, {"shape": i32([-1, 12])}, "iOS15"),
    ("reshape", {"x": (("n", 3, 4), "fp32")}, {"shape": i32([-1, 6])}, "iOS17"),
    ("reverse", {"x": (("n", 3), "fp32")}, {"axes": i32([-1])}, "iOS15"),
    ("reverse", {"x": ((2, 3), "uint16")}, {}, "iOS17"),
    ("reverse_sequence", {"x": ((4, 8), "fp32"), "lengths": ((4,), "int32")}, {"seq_axis": 1, "batch_axis": 0},
     "iOS15"),
    ("reverse_sequence", {"x": ((8, "n", 3), "int8"), "lengths": (("n",), "int16")},
     {"seq_axis": 0, "batch_axis": -2}, "iOS17"),
    ("slice_by_index", {"x": ((10, "n", 4), "fp32")},
     {"begin": i32([1, 0, 0]), "end": i32([8, 0, 1]), "stride": i32([2, 1, 1]),
      "begin_mask": [False, True, False], "end_mask": [False, True, False]}, "iOS15"),
    ("slice_by_index", {"x": ((10, "n", 4), "fp32")},
     {"begin": i32([1, 0, 2]), "end": i32([8, 0, 3]), "squeeze_mask": [True, False, True],
      "begin_mask": [False, True, False], "end_mask": [False, True, False]}, "iOS17"),
    ("slice_by_index", {"x": ((10, "n", 4), "fp32")},
     {"begin": i32([9, -1, 0]), "end": i32([0, 0, 4]), "stride": i32([-2, 1, 1]), "end_mask": [False, True, False]},
      "iOS15"),
    ("slice_by_index", {"x": ((10, "n"), "int16")}, {"begin": np.int8([-3, 2]), "end": np.int8([-1, 3])}, "iOS17"),
    ("slice_by_index", {"x": ((10, "n", 4), "fp32"), "begin": ((3,), "int32"), "end": ((3,), "int32")}, {}, "iOS17"),
    ("slice_by_index", {"x": ((3, 4), "int32")},
     {"begin": i32([1, 2]), "end": i32([0, 0]), "squeeze_mask": [True, True]}, "iOS15"),
    ("slice_by_size", {"x": ((10, "n", 4), "fp32")}, {"begin": i32([1, 0, 2]), "size": i32([3, -1, -1])}, "iOS15"),
    ("slice_by_size", {"x": ((10, "n", 4), "fp32"), "size": ((3,), "int32")}, {"begin": i32([1, 0, 2])}, "iOS15"),
    ("slice_by_size", {"x": ((10, 4), "uint8"), "begin": ((2,), "int8")}, {"size": np.int8([2, 3])}, "iOS17"),
    ("reshape_like", {"x": ((6, 4), "fp32"), "ref_tensors": [((2, 3, 7), "fp32"), ((1, 4), "int32")]},
     {"begins": [i32(0), i32(1)], "ends": [i32(2), i32(0)], "end_masks": [False, True]}, "iOS16"),
    ("reshape_like", {"x": ((24,), "int8"), "ref_tensors": [((2, 3, 4), "bool")]},
     {"begins": [i32(0)], "ends": [i32(3)], "end_masks": [False]}, "iOS17"),
    ("slice_update", {"x": ((10, 4), "fp32"), "update": ((3, 4), "fp32")},
     {"begin": i32([1, 0]), "end": i32([4, 0]), "end_mask": [False, True]}, "iOS18"),
    ("slice_update", {"x": ((10, "n"), "int8"), "update": ((4, "n"), "int8")},
     {"begin": i32([8, 0]), "end": i32([0, 0]), "stride": i32([-2, 1]), "begin_mask": [False, True],
      "end_mask": [False, True]}, "iOS18"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES)
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_same_types(op, inputs, consts, target)


# Shapes coremltools gets wrong or does not know; ours are the intended results.
OUR_TYPE_CASES = [
    # coremltools leaves the 0 unresolved when x has a symbolic dim.
    ("reshape", {"x": (("n", 3, 4), "fp32")}, {"shape": i32([0, -1, 2])}, "iOS15", [("fp32", ("n", 6, 2))]),
    ("reshape", {"x": (("n", 3, 4), "fp32")}, {"shape": i32([0, -1, 0])}, "iOS17", [("fp32", ("n", 3, 4))]),
    ("reshape", {"x": (("n", 3, 4), "fp32")}, {"shape": i32([1, 0, -1])}, "iOS17", [("fp32", (1, 3, "?"))]),
    ("reshape", {"x": (("n", "m"), "fp32")}, {"shape": i32([-1])}, "iOS17", [("fp32", ("?",))]),
    ("reshape", {"x": (("n", 3, 4), "fp32")}, {"shape": i32([3, -1, 4])}, "iOS17", [("fp32", (3, "n", 4))]),
    # x[0:, ::-1] of a symbolic dim is that dim; coremltools only knows it with both masks set.
    ("slice_by_index", {"x": (("n", "m"), "fp32")},
     {"begin": i32([0, -1]), "end": i32([0, 0]), "stride": i32([1, -1]), "end_mask": [True, True]}, "iOS17",
     [("fp32", ("n", "m"))]),
    # coremltools computes d - begin for a negative begin with size -1.
    ("slice_by_size", {"x": ((10, "n"), "fp32")}, {"begin": i32([-3, -2]), "size": i32([-1, -1])}, "iOS15",
     [("fp32", (3, 2))]),
    # symbolic reference shapes: coremltools refuses them; the shape is only known at run time.
    ("reshape_like", {"x": (("n", 4), "fp32"), "ref_tensors": [(("n", 2, 2), "fp32")]},
     {"begins": [i32(0)], "ends": [i32(0)], "end_masks": [True]}, "iOS16", [("fp32", ("n", 2, 2))]),
]


@pytest.mark.parametrize("op,inputs,consts,target,expected", OUR_TYPE_CASES)
def test_type_inference_where_coremltools_differs(op, inputs, consts, target, expected):
    assert ours_types(op, inputs, consts, target) == expected


# -- kernel values -----------------------------------------------------------------------------

VALUE_CASES = [
    ("expand_dims", {"x": rand(2, 3)}, {"axes": i32([0, -1])}, "iOS15"),
    ("expand_dims", {"x": rand(2, 3, dtype=f16)}, {"axes": i32([1])}, "iOS17"),
    ("expand_dims", {"x": np.array([True, False])}, {"axes": i32([0])}, "iOS15"),
    ("expand_dims", {"x": seq(3, dtype=np.int8)}, {"axes": i32([-1])}, "iOS17"),
    ("reshape", {"x": rand(2, 3, 4)}, {"shape": i32([4, -1])}, "iOS15"),
    ("reshape", {"x": rand(2, 3, 4, dtype=f16)}, {"shape": i32([0, 0, -1])}, "iOS15"),
    ("reshape", {"x": seq(2, 50, dtype=i32)}, {"shape": i32([1, 0, -1, 0])}, "iOS17"),
    ("reshape", {"x": seq(2, 6, dtype=i32), "shape": i32([3, 4])}, {}, "iOS15"),  # runtime shape
    ("reverse", {"x": rand(2, 3)}, {}, "iOS15"),
    ("reverse", {"x": seq(2, 3, 4, dtype=i32)}, {"axes": i32([-1, 0])}, "iOS15"),
    ("reverse", {"x": rand(3, 4, dtype=f16)}, {"axes": i32([1])}, "iOS17"),
    ("slice_by_index", {"x": rand(10, 6, 4)},
     {"begin": i32([1, 0, 0]), "end": i32([8, 0, 1]), "stride": i32([2, 1, 1]),
      "begin_mask": [False, True, False], "end_mask": [False, True, False]}, "iOS15"),
    ("slice_by_index", {"x": rand(10, 6, 4, dtype=f16)},
     {"begin": i32([9, -1, 0]), "end": i32([0, 0, 4]), "stride": i32([-2, 1, 1]), "end_mask": [False, True, False]},
      "iOS17"),
    ("slice_by_index", {"x": rand(10, 6, 4)},
     {"begin": i32([1, 0, -2]), "end": i32([8, 0, 3]), "squeeze_mask": [True, False, True],
      "begin_mask": [False, True, False], "end_mask": [False, True, False]}, "iOS15"),
    ("slice_by_index", {"x": seq(5, 7, dtype=i32), "begin": i32([-4, 1]), "end": i32([100, -1])}, {}, "iOS17"),
    ("slice_by_index", {"x": seq(5, 7, dtype=i32)},
     {"begin": i32([2, 3]), "end": i32([0, 0]), "squeeze_mask": [True, True]}, "iOS17"),
    ("slice_by_size", {"x": rand(5, 6)}, {"begin": i32([1, 2]), "size": i32([3, -1])}, "iOS15"),
    ("slice_by_size", {"x": seq(5, 6, dtype=i32), "begin": i32([-2, 0]), "size": i32([2, 4])}, {}, "iOS17"),
    ("squeeze", {"x": rand(1, 3, 1)}, {}, "iOS15"),
    ("squeeze", {"x": rand(1, 3, 1, dtype=f16)}, {"axes": i32([-1])}, "iOS17"),
    ("transpose", {"x": rand(2, 3, 4)}, {"perm": i32([2, 0, 1])}, "iOS15"),
    ("transpose", {"x": seq(2, 3, dtype=i32)}, {"perm": i32([-1, 0])}, "iOS17"),
    ("slice_update", {"x": rand(10, 4), "update": rand(3, 4)},
     {"begin": i32([1, 0]), "end": i32([4, 0]), "end_mask": [False, True]}, "iOS18"),
    ("slice_update", {"x": rand(10, 4, dtype=f16), "update": rand(4, 1, dtype=f16)},
     {"begin": i32([8, 2]), "end": i32([0, 3]), "stride": i32([-2, 1]), "begin_mask": [False, False]}, "iOS18"),
    ("slice_update", {"x": seq(3, 4, dtype=i32), "update": i32([7])},
     {"begin": i32([1, 2]), "end": i32([0, 3]), "squeeze_mask": [True, False]}, "iOS18"),
]


@pytest.mark.parametrize("op,runtime,consts,target", VALUE_CASES)
def test_values_match_coremltools(op, runtime, consts, target):
    check_values(op, runtime, consts, target)


def _depth_to_space(x, b):
    n, c, h, w = x.shape
    out = np.zeros((n, c // b // b, h * b, w * b), x.dtype)
    for n_, c_, h_, w_, i, j in np.ndindex(n, c // b // b, h, w, b, b):
        out[n_, c_, h_ * b + i, w_ * b + j] = x[n_, (i * b + j) * (c // b // b) + c_, h_, w_]
    return out


def _space_to_depth(x, b):
    n, c, h, w = x.shape
    out = np.zeros((n, c * b * b, h // b, w // b), x.dtype)
    for n_, c_, h_, w_, i, j in np.ndindex(n, c, h // b, w // b, b, b):
        out[n_, (i * b + j) * c + c_, h_, w_] = x[n_, c_, h_ * b + i, w_ * b + j]
    return out


def _pixel_shuffle(x, f):
    n, c, h, w = x.shape
    out = np.zeros((n, c // f // f, h * f, w * f), x.dtype)
    for n_, c_, h_, w_, i, j in np.ndindex(n, c // f // f, h, w, f, f):
        out[n_, c_, h_ * f + i, w_ * f + j] = x[n_, c_ * f * f + i * f + j, h_, w_]
    return out


def _space_to_batch(x, block, pads):
    p = np.pad(x, [(0, 0), (0, 0)] + [tuple(r) for r in pads])
    (b0, b1), (n, c, h, w) = block, p.shape
    out = np.zeros((n * b0 * b1, c, h // b0, w // b1), x.dtype)
    for i, j, n_ in np.ndindex(b0, b1, n):
        out[(i * b1 + j) * n + n_] = p[n_, :, i::b0, j::b1]
    return out


def _reverse_sequence(x, lengths, seq_axis, batch_axis):
    y = np.moveaxis(x, (batch_axis, seq_axis), (0, 1)).copy()
    for b, n in enumerate(lengths):
        y[b, :n] = y[b, :n][::-1]
    return np.moveaxis(y, (0, 1), (batch_axis, seq_axis))


def _sliding_windows(x, axis, size, stride):
    axis %= x.ndim
    win = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)
    win = np.take(win, np.arange(0, win.shape[axis], stride), axis=axis)
    return np.moveaxis(win, -1, axis + 1)


_X4 = rand(2, 8, 3, 2)
_X4H = rand(1, 4, 4, 6, dtype=f16)
_SEQ = np.array([[1, 2, 3, 4, 5, 0, 0, 0], [1, 2, 0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 0, 0, 0, 0],
                 [1, 2, 3, 4, 5, 6, 7, 8]], f32)
_S2B = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8]]], [[[9, 10, 11, 12], [13, 14, 15, 16]]]], f32)
_RS3 = seq(3, 5, 2)

REF_CASES = [
    ("depth_to_space", {"x": _X4}, {"block_size": 2}, "iOS15", _depth_to_space(_X4, 2)),
    ("depth_to_space", {"x": _X4H}, {"block_size": 2}, "iOS17", _depth_to_space(_X4H, 2)),
    ("space_to_depth", {"x": _X4H}, {"block_size": 2}, "iOS15", _space_to_depth(_X4H, 2)),
    ("pixel_shuffle", {"x": _X4}, {"upscale_factor": 2}, "iOS15", _pixel_shuffle(_X4, 2)),
    ("pixel_unshuffle", {"x": _pixel_shuffle(_X4, 2)}, {"downscale_factor": np.uint32(2)}, "iOS16", _X4),
    ("space_to_batch", {"x": _S2B}, {"block_shape": i32([2, 2]), "paddings": i32([[0, 0], [2, 0]])}, "iOS15",
     np.array([[[[0, 1, 3]]], [[[0, 9, 11]]], [[[0, 2, 4]]], [[[0, 10, 12]]], [[[0, 5, 7]]], [[[0, 13, 15]]],
               [[[0, 6, 8]]], [[[0, 14, 16]]]], f32)),
    ("space_to_batch", {"x": _X4H}, {"block_shape": i32([3, 2]), "paddings": i32([[1, 1], [0, 2]])}, "iOS17",
     _space_to_batch(_X4H, (3, 2), [[1, 1], [0, 2]])),
    ("batch_to_space", {"x": _space_to_batch(_S2B, (2, 2), [[0, 0], [2, 0]])},
     {"block_shape": i32([2, 2]), "crops": i32([[0, 0], [2, 0]])}, "iOS15", _S2B),
    ("batch_to_space", {"x": _space_to_batch(_X4H, (3, 2), [[1, 1], [0, 2]])},
     {"block_shape": i32([3, 2]), "crops": i32([[1, 1], [0, 2]])}, "iOS17", _X4H),
    ("reverse_sequence", {"x": _SEQ, "lengths": i32([7, 2, 3, 5])}, {"seq_axis": 1, "batch_axis": 0}, "iOS15",
     np.array([[0, 0, 5, 4, 3, 2, 1, 0], [2, 1, 0, 0, 0, 0, 0, 0], [3, 2, 1, 4, 0, 0, 0, 0],
               [5, 4, 3, 2, 1, 6, 7, 8]], f32)),
    ("reverse_sequence", {"x": _RS3, "lengths": i32([1, 3, 0, 2, 3])}, {"seq_axis": 0, "batch_axis": -2}, "iOS15",
     _reverse_sequence(_RS3, [1, 3, 0, 2, 3], 0, 1)),
    ("reverse_sequence", {"x": _RS3.astype(np.int8), "lengths": np.int16([2, 1, 2])}, {"seq_axis": -1, "batch_axis": 0},
     "iOS17", _reverse_sequence(_RS3.astype(np.int8), [2, 1, 2], 2, 0)),
    ("sliding_windows", {"x": seq(2, 10, 3)}, {"axis": -2, "size": 3, "stride": 2}, "iOS15",
     _sliding_windows(seq(2, 10, 3), -2, 3, 2)),
    ("sliding_windows", {"x": seq(7, 2, dtype=i32)}, {"axis": 0, "size": 4}, "iOS15", _sliding_windows(seq(7, 2),
     0, 4, 1)),
    ("sliding_windows", {"x": seq(5, dtype=f16)}, {"axis": 0, "size": 2, "stride": 3}, "iOS17",
     _sliding_windows(seq(5, dtype=f16), 0, 2, 3)),
    ("reshape_like", {"x": seq(6, 4)}, {"ref_tensors": [rand(2, 3, 7), seq(1, 4, dtype=i32)], "begins": [i32(0),
     i32(1)],
                                        "ends": [i32(2), i32(0)], "end_masks": [False, True]}, "iOS16",
     seq(2, 3, 4)),
]


@pytest.mark.parametrize("op,runtime,consts,target,expected", REF_CASES)
def test_values_match_reference(op, runtime, consts, target, expected):
    check_values(op, runtime, consts, target, expected=expected)


def test_reshape_kernel_reads_runtime_shape():
    # The same op on an input of another size: the kernel must not reuse compile-time dims.
    (out,), _ = run("reshape", {"x": seq(4, 3, dtype=i32), "shape": i32([2, -1])}, target="iOS17")
    assert out.shape == (2, 6)


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    # (op, inputs, consts, target, the input the message must name)
    ("expand_dims", {"x": ((2,), "int8")}, {"axes": i32([0])}, "iOS15", "x"),  # int8 is iOS17+
    ("expand_dims", {"x": ((2,), "fp32"), "axes": ((1,), "int32")}, {}, "iOS15", "axes"),
    ("expand_dims", {"x": ((2,), "fp32")}, {"axes": i32([0, 0])}, "iOS17", "axes"),
    ("transpose", {"x": ((2, 3), "fp32")}, {}, "iOS17", "perm"),
    ("transpose", {"x": ((2, 3), "fp32")}, {"perm": i32([0, 0])}, "iOS17", "perm"),
    ("reshape", {"x": ((2, 3), "fp32")}, {"shape": np.int8([6])}, "iOS15", "shape"),  # int8 shape is iOS17+
    ("reshape", {"x": ((2, 3), "fp32")}, {"shape": i32([4, -1])}, "iOS17", "shape"),
    ("reshape", {"x": ((2, 3), "fp32")}, {"shape": i32([-1, -1])}, "iOS17", "shape"),
    ("reshape", {"x": ((2, 3), "fp32")}, {}, "iOS17", "shape"),
    ("depth_to_space", {"x": ((1, 4, 2, 2), "int32")}, {"block_size": 2}, "iOS17", "x"),
    ("depth_to_space", {"x": ((1, 4, 2, 2), "fp32"), "block_size": ((), "int32")}, {}, "iOS17", "block_size"),
    ("space_to_depth", {"x": ((1, 4, 2), "fp32")}, {"block_size": 2}, "iOS17", "x"),
    ("pixel_unshuffle", {"x": ((1, 1, 4, 4), "fp32")}, {"downscale_factor": i32(2)}, "iOS17", "downscale_factor"),
    ("space_to_batch", {"x": ((1, 1, 3, 4), "fp32")}, {"block_shape": i32([2, 2])}, "iOS17", "paddings"),
    ("batch_to_space", {"x": ((1, 1, 3, 4), "fp32")}, {"block_shape": i32([2, 2]), "crops": i32([[0, 0], [0, 0]])},
     "iOS17", "x"),
    ("squeeze", {"x": ((1, 3), "fp32")}, {"axes": i32([2])}, "iOS17", "axes"),
    ("reverse", {"x": ((1, 3), "fp32"), "axes": ((1,), "int32")}, {}, "iOS17", "axes"),
    ("reverse_sequence", {"x": ((4, 3), "fp32"), "lengths": ((4,), "fp32")}, {"seq_axis": 1}, "iOS17", "lengths"),
    ("reverse_sequence", {"x": ((4, 3), "fp32"), "lengths": ((4,), "int32")}, {}, "iOS17", "batch_axis"),
    ("sliding_windows", {"x": ((4, 3), "bool")}, {"axis": 0, "size": 2}, "iOS15", "x"),  # bool is iOS17+
    ("sliding_windows", {"x": ((4, 3), "fp32")}, {"axis": 0}, "iOS17", "size"),
    ("slice_by_index", {"x": ((4, 3), "fp32")}, {"begin": i32([0, 0])}, "iOS17", "end"),
    ("slice_by_index", {"x": ((4, 3), "fp32"), "stride": ((2,), "int32")}, {"begin": i32([0, 0]), "end": i32([1, 1])},
     "iOS17", "stride"),
    ("slice_by_index", {"x": ((4, 3), "fp32")}, {"begin": i32([0]), "end": i32([1, 1])}, "iOS17", "begin"),
    ("slice_by_size", {"x": ((4, 3), "fp32")}, {"begin": i32([0, 0]), "size": np.float32([1, 1])}, "iOS17", "size"),
    ("slice_update", {"x": ((4, 3), "fp32"), "update": ((2, 2), "fp32")}, {"begin": i32([0, 0]), "end": i32([1, 1])},
     "iOS18", "update"),
    ("reshape_like", {"x": ((4,), "fp32"), "ref_tensors": [((2, 2), "fp32")]},
     {"begins": [i32(0)], "ends": [i32(2)]}, "iOS17", "end_masks"),
]


@pytest.mark.parametrize("op,inputs,consts,target,name", ERROR_CASES)
def test_bad_inputs_raise(op, inputs, consts, target, name):
    with pytest.raises(MILTypeError, match=rf"MIL op {op}\b.*{name}"):
        ours_types(op, inputs, consts, target)


def test_slice_update_needs_ios18():
    from torch_coreml.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match="slice_update.*iOS18"):
        ours_types("slice_update", {"x": ((4,), "fp32"), "update": ((1,), "fp32")},
                   {"begin": i32([0]), "end": i32([1])}, "iOS17")


@pytest.mark.parametrize("op", OPS)
def test_missing_required_input_is_named(op):
    for spec in CATALOGUE.versions(op):
        first = next(i.name for i in spec.inputs if not i.optional)
        _, b = new_function("main", {}, spec.since)
        with pytest.raises(MILTypeError, match=rf"MIL op {op}\b.*required input '{first}' is missing"):
            b.add_op(op, {})
