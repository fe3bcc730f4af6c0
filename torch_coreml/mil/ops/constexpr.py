"""Compile-time decompression ops (`constexpr_*`): weights stored compressed in the model and expanded
by Core ML at load time. Every input is a compile-time constant.

iOS16 forms take their parameters as op *attributes* in the serialized program; iOS18 forms take them
as inputs. The catalogue has no attribute concept, so both are declared here as const inputs; the
serializer must write the iOS16 ones (also used on iOS17) as attributes.

Packed bits (iOS16): values are packed from the least significant bit of byte 0 upwards; a value may
straddle two bytes. iOS18 uses sub-byte dtypes (uint1..uint6, int4) instead, held one value per byte.
Block-wise parameters (iOS18): a parameter of shape P applies to blocks of size data.shape / P.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .infer import normalize_axis
from .spec import In, mil_op

FLOATS = (dt.fp16, dt.fp32)
LUT_T = (dt.int8, dt.uint8, dt.fp16, dt.fp32)
IOS18_DATA = (dt.int4, dt.uint4, dt.int8, dt.uint8, dt.fp16, dt.fp32)
INDICES = (dt.uint1, dt.uint2, dt.uint3, dt.uint4, dt.uint6, dt.uint8)


# -- helpers ----------------------------------------------------------------------------------------
def unpack_bits(packed: torch.Tensor, nbits: int, count: int) -> torch.Tensor:
    """The first `count` unsigned `nbits`-bit values packed LSB-first in the bytes of `packed`."""
    bytes_ = packed.reshape(-1).to(torch.int64) & 0xFF
    bits = (bytes_[:, None] >> torch.arange(8)) & 1
    bits = bits.reshape(-1)[: count * nbits].reshape(count, nbits)
    return (bits << torch.arange(nbits)).sum(-1)


def _param_shape(ctx, name: str) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(ctx.value(name)).reshape(-1))


def _expand_blocks(param: torch.Tensor, shape) -> torch.Tensor:
    """Repeats each entry of a block-wise parameter over its block so it matches `shape`."""
    for axis, (n, p) in enumerate(zip(shape, param.shape)):
        if p != n:
            param = param.repeat_interleave(n // p, dim=axis)
    return param


def _check_blocks(ctx, data_shape, param: str):
    p = ctx.shape(param)
    if len(p) != len(data_shape):
        raise ctx.error(f"input {param!r} must have the data's rank {len(data_shape)}, got {ctx.type(param)}")
    for axis, (n, k) in enumerate(zip(data_shape, p)):
        if isinstance(n, int) and isinstance(k, int) and (k == 0 or n % k):
            raise ctx.error(f"input {param!r} has {k} blocks on axis {axis}, which does not divide {n}")


# -- iOS16 ----------------------------------------------------------------------------------------
def _infer_affine_dequantize(ctx):
    rank = ctx.rank("quantized_data")
    axis = normalize_axis(ctx, int(ctx.param("axis")), rank)
    for name in ("scale", "zero_point"):
        t = ctx.type(name)
        if t.rank > 1:
            raise ctx.error(f"input {name!r} must be a scalar or a vector, got {t}")
        if t.rank == 1 and t.shape[0] != ctx.shape("quantized_data")[axis]:
            raise ctx.error(f"input {name!r} has {t.shape[0]} entries for axis {axis} of size "
                            f"{ctx.shape('quantized_data')[axis]}")
    return TensorType(ctx.dtype("scale"), ctx.shape("quantized_data"))


def along_axis(param: torch.Tensor, rank: int, axis: int) -> torch.Tensor:
    """A scalar or vector parameter reshaped to broadcast against a rank-`rank` tensor on `axis`."""
    if param.dim() == 0:
        return param
    view = [1] * rank
    view[axis] = -1
    return param.reshape(view)


@mil_op("constexpr_affine_dequantize", since=Target.iOS16, infer=_infer_affine_dequantize,
        domains={"SrcT": (dt.uint8, dt.int8), "ZeroPointT": (dt.uint8, dt.int8, dt.fp32), "DstT": FLOATS},
        inputs=[In("quantized_data", "SrcT", const=True), In("zero_point", "ZeroPointT", const=True),
                In("scale", "DstT", const=True), In("axis", (dt.int32,), const=True, param=True)])
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    """Dequantizes 8-bit data: scale * (quantized_data - zero_point), where a vector scale or
    zero_point runs along `axis`."""
    rank = quantized_data.dim()
    axis = axis % rank
    zp = along_axis(zero_point.to(torch.float32), rank, axis)
    return (quantized_data.to(torch.float32) - zp) * along_axis(scale.to(torch.float32), rank, axis)


def _infer_cast(ctx):
    if ctx.param("output_dtype") != "fp32":
        raise ctx.error(f"input 'output_dtype' supports only 'fp32', got {ctx.param('output_dtype')!r}")
    return TensorType(dt.fp32, ctx.shape("source_val"))


_CAST_INPUTS = [In("source_val", (dt.fp16,), const=True),
                In("output_dtype", (dt.string,), const=True, param=True)]


@mil_op("constexpr_cast", since=Target.iOS16, inputs=_CAST_INPUTS, infer=_infer_cast)
@mil_op("constexpr_cast", since=Target.iOS18, inputs=_CAST_INPUTS, infer=_infer_cast)
def constexpr_cast(source_val, output_dtype):
    """Widens an fp16 constant to `output_dtype` (only fp32). iOS18 takes its parameters as inputs."""
    return source_val.to(torch.float32)


def _infer_lut_ios16(ctx):
    for n in ("indices", "lut"):
        if ctx.rank(n) != 1:
            raise ctx.error(f"input {n!r} must be a vector, got {ctx.type(n)}")
    palettes = ctx.shape("lut")[0]
    if palettes not in (2, 4, 16, 64, 256):
        raise ctx.error(f"input 'lut' must have 2, 4, 16, 64 or 256 entries, got {palettes}")
    shape = _param_shape(ctx, "shape")
    nbits = int(np.log2(palettes))
    need = -(-nbits * int(np.prod(shape)) // 8)
    if ctx.shape("indices")[0] != need:
        raise ctx.error(f"input 'indices' must hold ceil({nbits} bits * {int(np.prod(shape))} / 8) = "
                        f"{need} bytes, got {ctx.shape('indices')[0]}")
    return TensorType(ctx.dtype("lut"), shape)


@mil_op("constexpr_lut_to_dense", since=Target.iOS16, domains={"T": LUT_T}, infer=_infer_lut_ios16,
        inputs=[In("indices", (dt.uint8,), const=True), In("lut", "T", const=True),
                In("shape", (dt.uint32,), const=True, param=True)])
def constexpr_lut_to_dense(indices, lut, shape):
    """Palettized weights: `indices` packs one log2(len(lut))-bit index per output element
    (row-major, LSB-first); each output element is lut[index]; the result has shape `shape`."""
    nbits = int(np.log2(lut.shape[0]))
    count = int(np.prod(shape))
    return lut[unpack_bits(indices, nbits, count)].reshape([int(s) for s in shape])


def _infer_sparse_ios16(ctx):
    for n in ("nonzero_data", "mask"):
        if ctx.rank(n) != 1:
            raise ctx.error(f"input {n!r} must be a vector, got {ctx.type(n)}")
    shape = _param_shape(ctx, "shape")
    size = int(np.prod(shape))
    mask = np.asarray(ctx.value("mask")).astype(np.uint8)
    if mask.size != -(-size // 8):
        raise ctx.error(f"input 'mask' must hold ceil({size} / 8) bytes, got {mask.size}")
    bits = np.unpackbits(mask, bitorder="little")
    if bits[size:].any():
        raise ctx.error("input 'mask' has bits set past the end of the tensor")
    if int(bits.sum()) != ctx.shape("nonzero_data")[0]:
        raise ctx.error(f"input 'mask' sets {int(bits.sum())} bits but input 'nonzero_data' has "
                        f"{ctx.shape('nonzero_data')[0]} values")
    return TensorType(ctx.dtype("nonzero_data"), shape)


@mil_op("constexpr_sparse_to_dense", since=Target.iOS16, domains={"T": LUT_T}, infer=_infer_sparse_ios16,
        inputs=[In("nonzero_data", "T", const=True), In("mask", (dt.uint8,), const=True),
                In("shape", (dt.uint32,), const=True, param=True)])
def constexpr_sparse_to_dense(nonzero_data, mask, shape):
    """Unstructured sparsity: bit k of the packed `mask` (LSB-first) says whether output element k
    (row-major) is nonzero; nonzero elements take the values of `nonzero_data` in order."""
    count = int(np.prod(shape))
    keep = unpack_bits(mask, 1, count).bool()
    out = nonzero_data.new_zeros(count)
    out[keep] = nonzero_data
    return out.reshape([int(s) for s in shape])


# -- iOS18 ----------------------------------------------------------------------------------------
def _check_shift_scale(ctx, data_shape, data_dtype):
    if len(data_shape) < 1:
        raise ctx.error("the data must have rank >= 1")
    _check_blocks(ctx, data_shape, "scale")
    if ctx.has("offset"):
        if ctx.shape("offset") != ctx.shape("scale"):
            raise ctx.error(f"input 'offset' must have the shape of 'scale' {ctx.shape('scale')}, "
                            f"got {ctx.shape('offset')}")
        if not ctx.dtype("offset").is_float and ctx.dtype("offset") is not data_dtype:
            raise ctx.error(f"an integer input 'offset' must have the data's dtype {data_dtype}, "
                            f"got {ctx.dtype('offset')}")


def _infer_shift_scale(ctx):
    _check_shift_scale(ctx, ctx.shape("data"), ctx.dtype("data"))
    return TensorType(ctx.dtype("scale"), ctx.shape("data"))


def shift_scale(data, scale, offset):
    """scale * (data - offset) with block-wise scale/offset, computed in the scale's dtype."""
    x = data.to(scale.dtype)
    if offset is not None:
        x = x - _expand_blocks(offset.to(scale.dtype), data.shape)
    return x * _expand_blocks(scale, data.shape)


_SHIFT_SCALE_DOMAINS = {"SrcT": IOS18_DATA, "DstT": FLOATS, "OffsetT": IOS18_DATA}


@mil_op("constexpr_blockwise_shift_scale", since=Target.iOS18, domains=_SHIFT_SCALE_DOMAINS,
        infer=_infer_shift_scale,
        inputs=[In("data", "SrcT", const=True), In("scale", "DstT", const=True),
                In("offset", "OffsetT", const=True, optional=True)])
def constexpr_blockwise_shift_scale(data, scale, offset):
    """Block-wise dequantization: out[i] = scale[b] * (data[i] - offset[b]) where b = i // block and
    block = data.shape / scale.shape per axis (`offset` defaults to 0)."""
    return shift_scale(data, scale, offset)


def _check_lut(ctx, indices_shape, indices_dtype):
    lut = ctx.shape("lut")
    k = len(indices_shape)
    if k < 1:
        raise ctx.error("the indices must have rank >= 1")
    if len(lut) != k + 2:
        raise ctx.error(f"input 'lut' must have rank {k + 2} (indices rank + 2), got {ctx.type('lut')}")
    for axis, (n, g) in enumerate(zip(indices_shape, lut[:k])):
        if isinstance(n, int) and n % g:
            raise ctx.error(f"input 'lut' has {g} groups on axis {axis}, which does not divide {n}")
    if lut[-2] != 2 ** indices_dtype.bits:
        raise ctx.error(f"input 'lut' must have 2^{indices_dtype.bits} = {2 ** indices_dtype.bits} "
                        f"entries (axis -2) for {indices_dtype} indices, got {lut[-2]}")
    if ctx.has("vector_axis"):
        if ctx.rank("vector_axis") != 0:
            raise ctx.error("input 'vector_axis' must be a scalar")
        return normalize_axis(ctx, int(ctx.param("vector_axis")), k)
    if lut[-1] > 1:
        raise ctx.error(f"input 'vector_axis' is required when the lut holds vectors (size {lut[-1]})")
    return None


def _vector_shape(shape, axis, size):
    shape = list(shape)
    if axis is not None and size > 1:
        shape[axis] = shape[axis] * size if isinstance(shape[axis], int) else shape[axis]
    return tuple(shape)


def _infer_lut_ios18(ctx):
    axis = _check_lut(ctx, ctx.shape("indices"), ctx.dtype("indices"))
    return TensorType(ctx.dtype("lut"), _vector_shape(ctx.shape("indices"), axis, ctx.shape("lut")[-1]))


def lut_lookup(indices: torch.Tensor, lut: torch.Tensor, vector_axis) -> torch.Tensor:
    """Dense values for `indices` from a grouped (and possibly vector) lut [*groups, P, V]."""
    k, shape = indices.dim(), indices.shape
    palettes, vsize = lut.shape[-2:]
    group = torch.zeros(shape, dtype=torch.int64)  # flat group number of each element
    for axis in range(k):
        block = shape[axis] // lut.shape[axis]
        view = [1] * k
        view[axis] = -1
        group = group * lut.shape[axis] + (torch.arange(shape[axis]) // block).reshape(view)
    flat = lut.reshape(-1, vsize)
    vals = flat[group * palettes + indices.to(torch.int64)]           # [*shape, V]
    if vsize == 1 or vector_axis is None:
        return vals.squeeze(-1) if vsize == 1 else vals
    axis = vector_axis % k
    vals = vals.movedim(-1, axis + 1)                                  # [..., n_axis, V, ...]
    out_shape = list(shape)
    out_shape[axis] *= vsize
    return vals.reshape(out_shape)


_LUT_DOMAINS = {"IndicesT": INDICES, "T": LUT_T}
_VECTOR_AXIS = In("vector_axis", (dt.int32,), const=True, optional=True, param=True)


@mil_op("constexpr_lut_to_dense", since=Target.iOS18, domains=_LUT_DOMAINS, infer=_infer_lut_ios18,
        inputs=[In("indices", "IndicesT", const=True), In("lut", "T", const=True), _VECTOR_AXIS])
def constexpr_lut_to_dense_ios18(indices, lut, vector_axis):
    """Palettization with per-group tables: lut [*groups, 2^nbits, V] holds one table per block of
    indices (block = indices.shape / groups per axis). Each index selects a table entry; when the
    entries are vectors (V > 1) they are laid out consecutively along `vector_axis`, so that axis of
    the output is V times longer."""
    return lut_lookup(indices, lut, vector_axis)


def _check_sparse(ctx, data: str, mask: str):
    if ctx.rank(data) != 1:
        raise ctx.error(f"input {data!r} must be a vector, got {ctx.type(data)}")
    m = ctx.value(mask)
    if m is not None and int(np.count_nonzero(m)) != ctx.shape(data)[0]:
        raise ctx.error(f"input {mask!r} has {int(np.count_nonzero(m))} ones but input {data!r} has "
                        f"{ctx.shape(data)[0]} values")


def _infer_sparse_ios18(ctx):
    _check_sparse(ctx, "nonzero_data", "mask")
    return TensorType(ctx.dtype("nonzero_data"), ctx.shape("mask"))


def scatter_mask(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = values.new_zeros(mask.shape)
    out[mask != 0] = values
    return out


@mil_op("constexpr_sparse_to_dense", since=Target.iOS18, domains={"T": IOS18_DATA},
        infer=_infer_sparse_ios18,
        inputs=[In("nonzero_data", "T", const=True), In("mask", (dt.uint1,), const=True)])
def constexpr_sparse_to_dense_ios18(nonzero_data, mask):
    """Unstructured sparsity with a uint1 `mask` of the output's shape: ones take the values of
    `nonzero_data` in row-major order, zeros are 0."""
    return scatter_mask(nonzero_data, mask)


def _infer_lut_to_sparse(ctx):
    _check_sparse(ctx, "indices_nonzero_data", "indices_mask")
    mask = ctx.shape("indices_mask")
    axis = _check_lut(ctx, mask, ctx.dtype("indices_nonzero_data"))
    v = ctx.shape("lut")[-1]
    (d,) = ctx.shape("indices_nonzero_data")
    out_d = d * v if isinstance(d, int) and axis is not None else d
    return (TensorType(dt.uint1, _vector_shape(mask, axis, v)),
            TensorType(ctx.dtype("lut"), (out_d,)))


@mil_op("constexpr_lut_to_sparse", since=Target.iOS18, domains=_LUT_DOMAINS, infer=_infer_lut_to_sparse,
        inputs=[In("indices_mask", (dt.uint1,), const=True),
                In("indices_nonzero_data", "IndicesT", const=True), In("lut", "T", const=True),
                _VECTOR_AXIS])
def constexpr_lut_to_sparse(indices_mask, indices_nonzero_data, lut, vector_axis):
    """Palettization of sparse data: looks up the indices held at the ones of `indices_mask` (as
    `constexpr_lut_to_dense`) and returns (mask, values) of the result in sparse form; with vector
    tables the mask is repeated V times along `vector_axis`."""
    dense = lut_lookup(scatter_mask(indices_nonzero_data, indices_mask), lut, vector_axis)
    mask = indices_mask
    if vector_axis is not None:
        mask = mask.repeat_interleave(lut.shape[-1], dim=vector_axis % mask.dim())
    return mask, dense[mask != 0]


def _infer_sparse_shift_scale(ctx):
    _check_sparse(ctx, "nonzero_data", "data_mask")
    _check_shift_scale(ctx, ctx.shape("data_mask"), ctx.dtype("nonzero_data"))
    return (TensorType(dt.uint1, ctx.shape("data_mask")),
            TensorType(ctx.dtype("scale"), ctx.shape("nonzero_data")))


@mil_op("constexpr_sparse_blockwise_shift_scale", since=Target.iOS18, domains=_SHIFT_SCALE_DOMAINS,
        infer=_infer_sparse_shift_scale,
        inputs=[In("data_mask", (dt.uint1,), const=True), In("nonzero_data", "SrcT", const=True),
                In("scale", "DstT", const=True), In("offset", "OffsetT", const=True, optional=True)])
def constexpr_sparse_blockwise_shift_scale(data_mask, nonzero_data, scale, offset):
    """Block-wise dequantization of sparse data (as `constexpr_blockwise_shift_scale` on the dense
    layout given by `data_mask`); returns (data_mask, dequantized nonzero values)."""
    dense = shift_scale(scatter_mask(nonzero_data, data_mask), scale, offset)
    return data_mask, dense[data_mask != 0]
