"""constexpr_* decompression ops (iOS16 and iOS18) against coremltools: declarations, versions, type
inference, and values from coremltools' own decompression (`materialized_val_inference`), plus the
worked examples of coremltools' documentation.

Consts are given as plain values or (value, dtype name) pairs, e.g. (array, "uint4").
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.mil.ops.test_control_flow import (assert_same_declaration, assert_same_types, ct_const,
                                             ct_program, ct_versions, evaluate)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.types import tensor

f32, f16, i8, u8 = np.float32, np.float16, np.int8, np.uint8
OPS = ["constexpr_affine_dequantize", "constexpr_cast", "constexpr_lut_to_dense", "constexpr_sparse_to_dense",
       "constexpr_blockwise_shift_scale", "constexpr_lut_to_sparse", "constexpr_sparse_blockwise_shift_scale"]
_rng = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def ints(lo, hi, *shape, dtype=i8):
    return _rng.integers(lo, hi, size=shape).astype(dtype)


def pack(values, nbits):
    """LSB-first bit packing of unsigned n-bit values into bytes."""
    bits = ((np.asarray(values, np.int64)[:, None] >> np.arange(nbits)) & 1).reshape(-1)
    return np.packbits(bits.astype(u8), bitorder="little")


# -- declarations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", OPS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_versions(op)


@pytest.mark.parametrize("op,target", [(op, s.since.name) for op in OPS for s in CATALOGUE.versions(op)])
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


# -- cases: (op, consts, target) --------------------------------------------------------------------
_idx16 = _rng.integers(0, 4, 15)
_idx_b = _rng.integers(0, 16, 24)
_mask16 = (_rng.random(20) > 0.5)
_mask2d = (_rng.random((4, 6)) > 0.4).astype(u8)
_mask_v = (_rng.random((3, 4)) > 0.4).astype(u8)

CASES = [
    ("constexpr_affine_dequantize", {"quantized_data": ints(0, 255, 2, 3, 4, dtype=u8),
                                     "zero_point": ints(0, 255, 3, dtype=u8), "scale": _rng.random(3).astype(f32),
                                     "axis": np.int32(1)}, "iOS16"),
    ("constexpr_affine_dequantize", {"quantized_data": ints(-128, 127, 4, 5), "zero_point": np.int8(3),
                                     "scale": f16(0.25), "axis": np.int32(-1)}, "iOS16"),
    ("constexpr_affine_dequantize", {"quantized_data": ints(-128, 127, 4, 5), "zero_point": _rng.random(5).astype(f32),
                                     "scale": _rng.random(5).astype(f16), "axis": np.int32(-1)}, "iOS17"),
    ("constexpr_cast", {"source_val": _rng.random((3, 4)).astype(f16), "output_dtype": "fp32"}, "iOS16"),
    ("constexpr_cast", {"source_val": _rng.random((2,)).astype(f16), "output_dtype": "fp32"}, "iOS18"),
    ("constexpr_lut_to_dense", {"indices": pack(_idx16, 2), "lut": _rng.random(4).astype(f16),
                                "shape": np.array([3, 5], np.uint32)}, "iOS16"),
    ("constexpr_lut_to_dense", {"indices": pack(_idx_b, 4), "lut": ints(-128, 127, 16),
                                "shape": np.array([2, 3, 4], np.uint32)}, "iOS16"),
    ("constexpr_lut_to_dense", {"indices": pack(_rng.integers(0, 64, 7), 6), "lut": _rng.random(64).astype(f32),
                                "shape": np.array([7], np.uint32)}, "iOS16"),
    ("constexpr_sparse_to_dense", {"nonzero_data": _rng.random(int(_mask16.sum())).astype(f32),
                                   "mask": pack(_mask16, 1), "shape": np.array([4, 5], np.uint32)}, "iOS16"),
    ("constexpr_blockwise_shift_scale", {"data": (ints(-8, 7, 4, 6), "int4"),
                                         "scale": _rng.random((2, 3)).astype(f16),
                                         "offset": (ints(-8, 7, 2, 3), "int4")}, "iOS18"),
    ("constexpr_blockwise_shift_scale", {"data": ints(0, 255, 4, 6, dtype=u8), "scale": _rng.random((4, 1)).astype(f32),
                                         "offset": _rng.random((4, 1)).astype(f32)}, "iOS18"),
    ("constexpr_blockwise_shift_scale", {"data": (ints(0, 15, 2, 8, dtype=u8), "uint4"),
                                         "scale": _rng.random((1, 2)).astype(f32)}, "iOS18"),
    ("constexpr_lut_to_dense", {"indices": (ints(0, 4, 6, 2, dtype=u8), "uint2"),
                                "lut": _rng.random((2, 1, 4, 1)).astype(f16)}, "iOS18"),
    ("constexpr_lut_to_dense", {"indices": (ints(0, 2, 2, 2, 2, dtype=u8), "uint1"),
                                "lut": ints(-9, 9, 1, 1, 1, 2, 3), "vector_axis": np.int32(1)}, "iOS18"),
    ("constexpr_lut_to_dense", {"indices": (ints(0, 8, 4, 6, dtype=u8), "uint3"),
                                "lut": _rng.random((2, 3, 8, 2)).astype(f32), "vector_axis": np.int32(-1)}, "iOS18"),
    ("constexpr_sparse_to_dense", {"nonzero_data": ints(-9, 9, int(_mask2d.sum())), "mask": (_mask2d, "uint1")},
     "iOS18"),
    ("constexpr_sparse_to_dense", {"nonzero_data": (ints(0, 15, int(_mask2d.sum()), dtype=u8), "uint4"),
                                   "mask": (_mask2d, "uint1")}, "iOS18"),
    ("constexpr_lut_to_sparse", {"indices_mask": (_mask2d, "uint1"),
                                 "indices_nonzero_data": (ints(0, 2, int(_mask2d.sum()), dtype=u8), "uint1"),
                                 "lut": _rng.random((1, 1, 2, 1)).astype(f16)}, "iOS18"),
    ("constexpr_lut_to_sparse", {"indices_mask": (_mask_v, "uint1"),
                                 "indices_nonzero_data": (ints(0, 4, int(_mask_v.sum()), dtype=u8), "uint2"),
                                 "lut": _rng.random((1, 2, 4, 2)).astype(f32), "vector_axis": np.int32(0)}, "iOS18"),
    ("constexpr_sparse_blockwise_shift_scale", {"data_mask": (_mask2d, "uint1"),
                                                "nonzero_data": ints(-9, 9, int(_mask2d.sum())),
                                                "scale": _rng.random((1, 6)).astype(f16),
                                                "offset": ints(-3, 3, 1, 6)}, "iOS18"),
    ("constexpr_sparse_blockwise_shift_scale", {"data_mask": (_mask2d, "uint1"),
                                                "nonzero_data": (ints(0, 15, int(_mask2d.sum()), dtype=u8), "uint4"),
                                                "scale": _rng.random((2, 3)).astype(f32)}, "iOS18"),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def run_const_op(op, consts, target):
    fn, b = new_function("f", {}, target)
    bound = {n: b.const(*v) if isinstance(v, tuple) else b.const(v) for n, v in consts.items()}
    fn.block.outputs = list(b.add_op(op, bound).outputs)
    return evaluate(fn), [v.type for v in fn.block.outputs]


def ct_decompressed(op, consts, target):
    from coremltools.converters.mil import Builder as mb

    kw = {n: ct_const(*v) if isinstance(v, tuple) else v for n, v in consts.items()}
    got = {}

    def build(x):
        out = getattr(mb, op)(**kw)
        got["op"] = (out[0] if isinstance(out, (list, tuple)) else out).op
        return x

    ct_program(build, [((1,), "fp32")], target)
    val = got["op"].materialized_val_inference()
    return list(val) if isinstance(val, tuple) else [val]


@pytest.mark.parametrize("op,consts,target", CASES, ids=IDS)
def test_types_match_coremltools(op, consts, target):
    assert_same_types(op, {}, consts, target)


@pytest.mark.parametrize("op,consts,target", CASES, ids=IDS)
def test_values_match_coremltools(op, consts, target):
    outs, types = run_const_op(op, consts, target)
    want = ct_decompressed(op, consts, target)
    assert len(outs) == len(want)
    for o, w, t in zip(outs, want, types):
        assert tuple(o.shape) == tuple(t.shape) == w.shape
        assert o.dtype == t.dtype.torch
        tol = 1e-3 if t.dtype.name == "fp16" else 1e-6
        np.testing.assert_allclose(o.float().numpy(), np.asarray(w, np.float64), rtol=tol, atol=tol)


# -- documented examples ----------------------------------------------------------------------------
def test_lut_to_dense_grouped_example():
    idx = np.array([2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3], u8).reshape(6, 2)
    lut = np.array([1, 5, 9, 13, 2, 10, 18, 26], f16).reshape(2, 1, 4, 1)
    (out,), _ = run_const_op("constexpr_lut_to_dense", {"indices": (idx, "uint2"), "lut": lut}, "iOS18")
    np.testing.assert_array_equal(out.numpy(), np.array([[9, 13], [13, 1], [5, 1], [26, 2], [18, 10], [2, 26]], f16))


@pytest.mark.parametrize("axis", [1, 2])
def test_lut_to_dense_vector_example(axis):
    idx = np.array([[[0, 0], [1, 0]], [[1, 1], [0, 0]]], u8)
    a, b = [1, 2, 3], [4, 5, 6]
    lut = np.array([a, b], i8).reshape(1, 1, 1, 2, 3)
    (out,), _ = run_const_op("constexpr_lut_to_dense", {"indices": (idx, "uint1"), "lut": lut,
                                                        "vector_axis": np.int32(axis)}, "iOS18")
    vec = np.array([a, b])[idx]                     # [2, 2, 2, 3]
    want = np.moveaxis(vec, -1, axis + 1).reshape([2, 6, 2] if axis == 1 else [2, 2, 6])
    np.testing.assert_array_equal(out.numpy(), want)


def test_sparse_blockwise_shift_scale_example():
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]], u8)
    data = np.array([10, 11, 3, 4, 5, 6, 7, 8, 9], i8)
    consts = {"data_mask": (mask, "uint1"), "nonzero_data": data, "scale": np.array([[0.1, 0.2, 0.3, 0.4]], f32),
              "offset": np.array([[1, 2, 3, 4]], i8)}
    (m, vals), _ = run_const_op("constexpr_sparse_blockwise_shift_scale", consts, "iOS18")
    np.testing.assert_array_equal(m.numpy(), mask)
    np.testing.assert_allclose(vals.numpy(), [0.9, 1.8, 0.2, 0.4, 0.6, 0.9, 1.2, 0.7, 1.4], rtol=1e-6)


def test_lut_to_sparse_vector_example():
    mask = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1], [0, 1, 1, 0, 1, 0], [0, 0, 0, 1, 0, 0]], u8)
    idx = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1], u8)
    lut = np.array([[2, 2], [3, 3]], f16).reshape(1, 1, 2, 2)
    (m, vals), _ = run_const_op("constexpr_lut_to_sparse", {"indices_mask": (mask, "uint1"),
                                                            "indices_nonzero_data": (idx, "uint1"), "lut": lut,
                                                            "vector_axis": np.int32(0)}, "iOS18")
    np.testing.assert_array_equal(m.numpy(), np.repeat(mask, 2, axis=0))
    dense = np.zeros((8, 6), f16)
    dense[np.repeat(mask, 2, axis=0) != 0] = vals.numpy()
    want = np.zeros((4, 6), f16)
    want[mask != 0] = np.array([2, 3])[idx]
    np.testing.assert_array_equal(dense, np.repeat(want, 2, axis=0))


# -- errors -----------------------------------------------------------------------------------------
def test_rejects_bad_inputs():
    fn, b = new_function("f", {"q": tensor("int8", (4, 5)), "h": tensor("fp16", (3,))}, "iOS18")
    q, h = fn.inputs
    uint = lambda a, d: b.const(np.asarray(a, u8), d)  # noqa: E731
    cases = [
        (r"constexpr_affine_dequantize.*'quantized_data'.*constant",
         lambda: b.op("constexpr_affine_dequantize", quantized_data=q, zero_point=np.int8(0), scale=f32(1),
                      axis=np.int32(0))),
        (r"constexpr_affine_dequantize.*'scale'", lambda: b.op(
            "constexpr_affine_dequantize", quantized_data=ints(0, 9, 4, 5), zero_point=np.int8(0),
            scale=np.ones(3, f32), axis=np.int32(0))),
        (r"constexpr_affine_dequantize.*axis", lambda: b.op(
            "constexpr_affine_dequantize", quantized_data=ints(0, 9, 4, 5), zero_point=np.int8(0),
            scale=f32(1), axis=np.int32(2))),
        (r"constexpr_cast.*'output_dtype'", lambda: b.op("constexpr_cast", source_val=np.ones(3, f16),
                                                         output_dtype="int32")),
        (r"constexpr_cast.*'source_val'.*fp32", lambda: b.op("constexpr_cast", source_val=np.ones(3, f32),
                                                             output_dtype="fp32")),
        (r"constexpr_cast.*'source_val'.*constant", lambda: b.op("constexpr_cast", source_val=h, output_dtype="fp32")),
        (r"constexpr_cast.*'output_dtype'.*missing", lambda: b.op("constexpr_cast", source_val=np.ones(3, f16))),
        (r"constexpr_lut_to_dense.*'lut'.*2\^2", lambda: b.op(
            "constexpr_lut_to_dense", indices=uint(np.zeros((4, 2)), "uint2"), lut=np.ones((1, 1, 8, 1), f32))),
        (r"constexpr_lut_to_dense.*'vector_axis'", lambda: b.op(
            "constexpr_lut_to_dense", indices=uint(np.zeros((4, 2)), "uint1"), lut=np.ones((1, 1, 2, 3), f32))),
        (r"constexpr_lut_to_dense.*'indices'.*int8", lambda: b.op(
            "constexpr_lut_to_dense", indices=np.zeros((4, 2), i8), lut=np.ones((1, 1, 256, 1), f32))),
        (r"constexpr_sparse_to_dense.*'mask'.*ones", lambda: b.op(
            "constexpr_sparse_to_dense", nonzero_data=np.ones(3, f32), mask=uint([[1, 0], [0, 0]], "uint1"))),
        (r"constexpr_blockwise_shift_scale.*'scale'.*divide", lambda: b.op(
            "constexpr_blockwise_shift_scale", data=ints(0, 9, 4, 6), scale=np.ones((3, 1), f32))),
        (r"constexpr_blockwise_shift_scale.*'offset'", lambda: b.op(
            "constexpr_blockwise_shift_scale", data=ints(0, 9, 4, 6), scale=np.ones((2, 1), f32),
            offset=np.ones((2, 1), u8))),
    ]
    for pattern, build in cases:
        with pytest.raises(MILTypeError, match=pattern):
            build()


def test_chained_constexpr_ops():
    """Joint compression: a constexpr op's output feeds another constexpr op's const input."""
    fn, b = new_function("f", {}, "iOS18")
    mask = (np.arange(12).reshape(3, 4) % 3 == 0).astype(u8)
    m, v = b.op("constexpr_lut_to_sparse", indices_mask=b.const(mask, "uint1"),
                indices_nonzero_data=b.const(np.zeros(int(mask.sum()), u8), "uint1"),
                lut=np.ones((1, 1, 2, 1), f16))
    fn.block.outputs = [b.op("constexpr_sparse_to_dense", nonzero_data=v, mask=m)]
    assert torch.equal(evaluate(fn)[0], torch.from_numpy(mask.astype(f16)))
