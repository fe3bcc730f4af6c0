"""2D resizing: upsample_nearest2d, _upsample_nearest_exact2d and upsample_bilinear2d.

torch picks source positions from the ratio in/out when output_size is given and from 1/scale when
scale factors are; MIL ops use in/out. The two agree whenever out == in * scale exactly, which is
checked; integer scale factors also work for dynamic sizes (MIL `upsample_*` ops). Bicubic has no MIL
counterpart and is left to torch's decomposition.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..registry import lowering
from ._nn_helpers import rank

aten = torch.ops.aten


def _plan(ctx, input, output_size, scale_factors, strict=True):
    """(output sizes or None per axis, integer scale per axis or None) for the last two axes.

    strict: refuse scale factors whose in/out ratio differs from 1/scale."""
    if rank(input) != 4:
        raise ctx.unsupported(f"2D resizing of a rank-{rank(input)} input")
    if not input.dtype.is_float:
        raise ctx.unsupported("resizing an integer tensor (MIL resize ops take floats)")
    spatial = input.shape[-2:]
    if output_size is not None:
        if not all(isinstance(o, int) for o in output_size):
            raise ctx.unsupported("resizing to a dynamic output size")
        sizes = [int(o) for o in output_size]
        # An output that is an exact multiple of a static input is an integer upsampling.
        factors = [o // d if isinstance(d, int) and d > 0 and o % d == 0 else None
                   for o, d in zip(sizes, spatial)]
        return sizes, factors
    scales = [float(s) for s in scale_factors]
    factors = [int(s) if s == int(s) and s >= 1 else None for s in scales]
    sizes = []
    for d, s, f in zip(spatial, scales, factors):
        if not isinstance(d, int):
            sizes.append(None)
            continue
        size = math.floor(d * s)
        if strict and f is None and size != d * s:
            # torch would sample at positions from 1/scale, MIL from in/out: they differ here.
            raise ctx.unsupported(f"scale factor {s} does not map size {d} to a whole size")
        sizes.append(size)
    if None in sizes and None in factors:
        raise ctx.unsupported("a non-integer scale factor with a dynamic input size")
    return sizes, factors


def _nearest(ctx, input, output_size, scale_factors):
    sizes, factors = _plan(ctx, input, output_size, scale_factors, strict=False)
    if None not in factors:
        return ctx.b.op("upsample_nearest_neighbor", x=input, scale_factor_height=factors[0],
                        scale_factor_width=factors[1])
    # Downsampling or a fractional ratio: a gather with torch's own source indices (MIL's fractional
    # scale factors would round the output size differently).
    if None in sizes or not all(isinstance(d, int) for d in input.shape[-2:]):
        raise ctx.unsupported("nearest resizing by a non-integer factor of a dynamic input size")
    out = input
    for i, (axis, d, o) in enumerate(zip((2, 3), input.shape[-2:], sizes)):
        ratio = d / o if scale_factors is None else 1.0 / scale_factors[i]
        out = ctx.b.op("gather", x=out, indices=_nearest_source(d, o, ratio), axis=axis)
    return out


def _nearest_source(size_in: int, size_out: int, ratio: float) -> list[int]:
    """torch's nearest index min(floor(i * ratio), in - 1), the product taken in float32 as its
    kernels do, so rounding at exact multiples matches."""
    i = np.arange(size_out, dtype=np.float32)
    idx = np.floor(i * np.float32(ratio)).astype(np.int64)
    return np.minimum(idx, size_in - 1).tolist()


@lowering(aten.upsample_nearest2d.vec)
def upsample_nearest2d_vec(ctx, input, output_size, scale_factors):
    """upsample_nearest2d.vec(Tensor input, SymInt[]? output_size, float[]? scale_factors) -> Tensor"""
    return _nearest(ctx, input, output_size, scale_factors)


@lowering(aten.upsample_nearest2d.default)
def upsample_nearest2d(ctx, self, output_size, scales_h=None, scales_w=None):
    """upsample_nearest2d(Tensor self, SymInt[2] output_size, float? scales_h=None,
    float? scales_w=None) -> Tensor"""
    _check_scales_agree(ctx, self, output_size, scales_h, scales_w)
    return _nearest(ctx, self, output_size, None)


def _check_scales_agree(ctx, input, output_size, scales_h, scales_w):
    """With both output_size and scales given, torch samples by the scales: fine only if they agree."""
    for d, o, s in zip(input.shape[-2:], output_size, (scales_h, scales_w)):
        if s is not None and (not isinstance(d, int) or d * s != o):
            raise ctx.unsupported(f"scale {s} disagrees with output size {o} for input size {d}")


def _nearest_exact(ctx, input, output_size, scale_factors):
    sizes, _ = _plan(ctx, input, output_size, scale_factors)
    if None in sizes:
        raise ctx.unsupported("nearest-exact resizing of a dynamic input size")
    return ctx.b.op("resize_nearest_neighbor", x=input, target_size_height=sizes[0],
                    target_size_width=sizes[1])


@lowering(aten._upsample_nearest_exact2d.vec)
def upsample_nearest_exact2d_vec(ctx, input, output_size, scale_factors):
    """_upsample_nearest_exact2d.vec(Tensor input, SymInt[]? output_size, float[]? scale_factors)
    -> Tensor

    Kept whole: MIL resize_nearest_neighbor samples at half-pixel centres, exactly this mode."""
    return _nearest_exact(ctx, input, output_size, scale_factors)


@lowering(aten._upsample_nearest_exact2d.default)
def upsample_nearest_exact2d(ctx, self, output_size, scales_h=None, scales_w=None):
    """_upsample_nearest_exact2d(Tensor self, SymInt[2] output_size, float? scales_h=None,
    float? scales_w=None) -> Tensor"""
    _check_scales_agree(ctx, self, output_size, scales_h, scales_w)
    return _nearest_exact(ctx, self, output_size, None)


def _bilinear(ctx, input, output_size, align_corners, scale_factors):
    sizes, factors = _plan(ctx, input, output_size, scale_factors, strict=False)
    spatial = input.shape[-2:]
    ratio_differs = scale_factors is not None and not align_corners and any(
        isinstance(d, int) and o != d * s for d, o, s in zip(spatial, sizes, scale_factors))
    if ratio_differs:
        return _bilinear_by_gather(ctx, input, sizes, scale_factors)
    mode = "STRICT_ALIGN_CORNERS" if align_corners else "UNALIGN_CORNERS"
    if None not in sizes:
        return ctx.b.op("resize_bilinear", x=input, target_size_height=sizes[0],
                        target_size_width=sizes[1], sampling_mode=mode)
    # Dynamic input, integer factors: upsample_bilinear's align_corners picks the same two modes.
    return ctx.b.op("upsample_bilinear", x=input, scale_factor_height=factors[0],
                    scale_factor_width=factors[1], align_corners=bool(align_corners))


def _bilinear_by_gather(ctx, input, sizes, scale_factors):
    """Half-pixel bilinear resizing at torch's positions (i + 0.5) / scale - 0.5, which no MIL
    sampling mode gives when out != in * scale: per axis, gather the two neighbours and blend them
    with constant weights (static spatial sizes only)."""
    if None in sizes or not all(isinstance(d, int) for d in input.shape[-2:]):
        raise ctx.unsupported("bilinear resizing by a non-integer factor of a dynamic input size")
    out = input
    for axis, d, o, s in zip((2, 3), input.shape[-2:], sizes, scale_factors):
        # float32 arithmetic, as torch's CPU kernel computes the source positions.
        src = np.maximum((np.arange(o, dtype=np.float32) + 0.5) * np.float32(1.0 / s) - 0.5, 0)
        lo = np.minimum(np.floor(src).astype(np.int64), d - 1)
        hi = np.minimum(lo + 1, d - 1)
        weight = (src - lo).astype(np.float32).reshape((o, 1) if axis == 2 else (o,))
        below = ctx.b.op("gather", x=out, indices=lo.tolist(), axis=axis)
        above = ctx.b.op("gather", x=out, indices=hi.tolist(), axis=axis)
        step = ctx.b.op("mul", x=ctx.b.op("sub", x=above, y=below), y=ctx.const(weight, out.dtype))
        out = ctx.b.op("add", x=below, y=step)
    return out


@lowering(aten.upsample_bilinear2d.vec)
def upsample_bilinear2d_vec(ctx, input, output_size, align_corners, scale_factors):
    """upsample_bilinear2d.vec(Tensor input, SymInt[]? output_size, bool align_corners,
    float[]? scale_factors) -> Tensor"""
    return _bilinear(ctx, input, output_size, align_corners, scale_factors)


@lowering(aten.upsample_bilinear2d.default)
def upsample_bilinear2d(ctx, self, output_size, align_corners, scales_h=None, scales_w=None):
    """upsample_bilinear2d(Tensor self, SymInt[2] output_size, bool align_corners,
    float? scales_h=None, float? scales_w=None) -> Tensor"""
    _check_scales_agree(ctx, self, output_size, scales_h, scales_w)
    return _bilinear(ctx, self, output_size, align_corners, None)
