"""Sampling, distance and assorted nn ops MIL has no single op for, built from gathers, scatters,
matrix products and arithmetic: grid_sampler_2d/3d, antialiased bilinear resizing, cdist / pdist /
dist, _trilinear (nn.functional.bilinear), embedding_bag, segment_reduce, diagonal_scatter, addmv,
ldexp, and transposed convolution with a run-time weight.

Choices that are not obvious from the ops' definitions:
- grid sampling does not use MIL `resample`: its nearest mode rounds halves up (torch rounds them to
  even), its reflection mirrors about edge pixels (torch mirrors coordinates about the image border)
  and it has no bicubic mode. Coordinate arithmetic runs in fp32 even in fp16 programs: scaled to
  pixels in fp16, a coordinate past 2048 would round to a neighbouring pixel.
- Gathers never read outside the input: the image gets a one-pixel zero border, every tap position
  is clipped into it, so a tap off the image reads 0 (torch's "zeros" padding) with no mask.
- Reductions over ragged groups (embedding bags, segments) must not mix values of other groups, even
  as `0 * x` (an inf elsewhere would become NaN), so they scatter or select instead of multiplying
  by 0/1 masks in a matrix product.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from ._nn_helpers import normalize_dims, output_used, prod, rank
from .conv import _dilate_kernel
from .elementwise import binary, clamp_between, select, to_float
from .linear import _beta_self_plus_alpha_product
from .shape import int_vector, slice_axis

aten = torch.ops.aten


# -- shared helpers --------------------------------------------------------------------------------

def _dim(ctx, x: Var, axis: int):
    """x.shape[axis] as an int, or as an int32 scalar Var when it is only known at run time."""
    d = x.shape[axis]
    if isinstance(d, int):
        return d
    return ctx.b.op("gather", x=ctx.b.op("shape", x=x), indices=ctx.const(np.int32(axis), dt.int32), axis=0)


def _reshape(ctx, x: Var, sizes) -> Var:
    """Reshape to ints and int32 scalar Vars; a lone run-time size becomes -1, keeping the shape const."""
    sizes = list(sizes)
    if sum(isinstance(s, Var) for s in sizes) == 1 and -1 not in sizes:
        sizes = [-1 if isinstance(s, Var) else s for s in sizes]
    return ctx.b.op("reshape", x=x, shape=int_vector(ctx, sizes))


def _arange(ctx, n) -> Var:
    """[0, 1, ..., n - 1] as int32, n an int or an int32 scalar Var."""
    if isinstance(n, int):
        return ctx.const(np.arange(n, dtype=np.int32), dt.int32)
    return ctx.b.op("range_1d", start=np.int32(0), end=n, step=np.int32(1))


def _fill(ctx, sizes, value, dtype: dt.DType) -> Var:
    if all(isinstance(s, int) for s in sizes):
        return ctx.const(np.full(sizes, value, dtype.numpy), dtype)
    return ctx.b.op("fill", shape=int_vector(ctx, sizes), value=ctx.const(np.asarray(value, dtype.numpy), dtype))


def _f32(ctx, x: Var) -> Var:
    return ctx.cast(to_float(ctx, x), dt.fp32)


# -- grid_sampler_2d / grid_sampler_3d -------------------------------------------------------------

_BILINEAR, _NEAREST, _BICUBIC = 0, 1, 2
_ZEROS, _BORDER, _REFLECTION = 0, 1, 2
_CUBIC_A = -0.75  # the cubic convolution parameter torch uses


@lowering(aten.grid_sampler_2d.default, aten.grid_sampler_3d.default)
def grid_sampler(ctx, input, grid, interpolation_mode, padding_mode, align_corners):
    """grid_sampler_2d(Tensor input, Tensor grid, int interpolation_mode, int padding_mode,
    bool align_corners) -> Tensor   (grid_sampler_3d has the same schema)

    Each output point reads the input at the grid's coordinates: per spatial axis, the tap positions
    and weights of the interpolation (1 tap nearest, 2 bilinear, 4 bicubic), then one gather of all
    tap combinations from the channels-last, zero-bordered input and their weighted sum."""
    k = rank(input) - 2
    if interpolation_mode not in (_BILINEAR, _NEAREST, _BICUBIC) or (k == 3 and interpolation_mode == _BICUBIC):
        raise ctx.unsupported(f"grid sampling with interpolation_mode {interpolation_mode} in {k}D")
    if padding_mode not in (_ZEROS, _BORDER, _REFLECTION):
        raise ctx.unsupported(f"grid sampling with padding_mode {padding_mode}")
    sizes, channels = list(input.shape[2:]), input.shape[1]
    if not all(isinstance(d, int) for d in sizes + [channels]):
        raise ctx.unsupported("grid sampling of an input with a dynamic channel count or spatial size")
    n, out_dims = _dim(ctx, grid, 0), [_dim(ctx, grid, 1 + i) for i in range(k)]
    coords = ctx.b.op("split", x=_reshape(ctx, _f32(ctx, grid), [n, -1, k]), num_splits=k, axis=2)
    # The grid's last axis holds (x, y[, z]): the spatial axes in reverse order.
    taps = [_axis_taps(ctx, coords[k - 1 - i], size, interpolation_mode, padding_mode, align_corners)
            for i, size in enumerate(sizes)]

    counts = [pos.shape[-1] for pos, _ in taps]
    total = prod(counts)
    bordered = [d + 2 for d in sizes]
    index = weight = None
    for i, (pos, w) in enumerate(taps):
        # Tap t of the combination takes tap (t // inner) % count of axis i (row-major over axes).
        pattern = (np.arange(total) // prod(counts[i + 1:])) % counts[i]
        term = binary(ctx, "mul", _spread(ctx, ctx.cast(pos, dt.int32), pattern), prod(bordered[i + 1:]))
        index = term if index is None else ctx.b.op("add", x=index, y=term)
        if w is not None:
            w = _spread(ctx, w, pattern)
            weight = w if weight is None else ctx.b.op("mul", x=weight, y=w)
    # Rows of all images in one table: image b's pixels start at b * prod(bordered).
    first_row = binary(ctx, "mul", _arange(ctx, n), prod(bordered))
    index = ctx.b.op("add", x=index, y=ctx.b.op("expand_dims", x=first_row, axes=[1, 2]))

    x = ctx.b.op("transpose", x=to_float(ctx, input), perm=[0, *range(2, k + 2), 1])
    x = ctx.b.op("pad", x=x, pad=[1, 1] * k + [0, 0], mode="constant", constant_val=0.0)
    values = ctx.b.op("gather", x=ctx.b.op("reshape", x=x, shape=[-1, channels]), indices=index, axis=0)
    if weight is not None:  # [N, P, 1, T] @ [N, P, T, C]
        weight = ctx.b.op("expand_dims", x=ctx.cast(weight, values.dtype), axes=[2])
        values = ctx.b.op("matmul", x=weight, y=values)
    out = ctx.b.op("transpose", x=values, perm=[0, 3, 1, 2])
    return _reshape(ctx, out, [n, channels, *out_dims])


def _spread(ctx, v: Var, pattern: np.ndarray) -> Var:
    """v's taps [N, P, T_axis] laid out over all tap combinations [N, P, T]: entry t is v's pattern[t]."""
    if len(pattern) == v.shape[-1]:
        return v  # the only axis with several taps: the combinations are its taps, in order
    return ctx.b.op("gather", x=v, indices=ctx.const(pattern.astype(np.int32), dt.int32), axis=2)


def _axis_taps(ctx, coord, size: int, mode: int, padding: int, align_corners: bool):
    """Tap positions along one axis, clipped into the zero border [-1, size] and shifted by one, and
    their weights (None for nearest); coord is [N, P, 1] fp32 in [-1, 1] units, results [N, P, T]."""
    src = _unnormalize(ctx, coord, size, align_corners)
    if mode != _BICUBIC:
        src = _pad_coordinates(ctx, src, size, padding, align_corners)
    if mode == _NEAREST:
        pos, w = ctx.b.op("round", x=src), None  # halves to even, as torch's nearbyint
    else:
        offsets = [0.0, 1.0] if mode == _BILINEAR else [-1.0, 0.0, 1.0, 2.0]
        pos = ctx.b.op("add", x=ctx.b.op("floor", x=src), y=ctx.const(np.asarray(offsets, np.float32), dt.fp32))
        dist = ctx.b.op("abs", x=ctx.b.op("sub", x=src, y=pos))
        w = binary(ctx, "sub", 1.0, dist) if mode == _BILINEAR else _cubic_weights(ctx, dist)
        if mode == _BICUBIC:  # bicubic pads each tap, not the continuous coordinate
            pos = _pad_coordinates(ctx, pos, size, padding, align_corners)
    pos = clamp_between(ctx, pos, -1.0, float(size))
    # NaN coordinates read the zero border instead of an undefined row.
    pos = select(ctx, ctx.b.op("not_equal", x=pos, y=pos), -1.0, pos)
    return binary(ctx, "add", pos, 1.0), w


def _unnormalize(ctx, coord, size: int, align_corners: bool):
    """[-1, 1] onto pixel centres 0 .. size-1 (align_corners) or pixel edges -0.5 .. size-0.5."""
    shifted = binary(ctx, "add", coord, 1.0)
    if align_corners:
        return binary(ctx, "mul", shifted, (size - 1) / 2)
    return binary(ctx, "sub", binary(ctx, "mul", shifted, size / 2), 0.5)


def _pad_coordinates(ctx, pos, size: int, padding: int, align_corners: bool):
    """torch's padding modes act on coordinates: border clips them into the image, reflection
    mirrors them about its edges (pixel centres with align_corners, else outer edges), then clips."""
    if padding == _ZEROS:
        return pos
    if padding == _REFLECTION:
        low, span = (0.0, size - 1.0) if align_corners else (-0.5, float(size))
        if span == 0:  # a single pixel with align_corners: everything reflects onto it
            return ctx.b.op("fill", shape=ctx.shape_var(pos), value=0.0)
        dist = ctx.b.op("abs", x=binary(ctx, "sub", pos, low))
        extra = binary(ctx, "mod", dist, span)
        flips = ctx.b.op("floor", x=binary(ctx, "real_div", dist, span))
        even = binary(ctx, "equal", binary(ctx, "mod", flips, 2.0), 0.0)
        pos = ctx.b.op("select", cond=even, a=binary(ctx, "add", extra, low),
                       b=binary(ctx, "sub", span + low, extra))
    return clamp_between(ctx, pos, 0.0, float(size - 1))


def _cubic_weights(ctx, dist):
    """Keys' cubic convolution kernel at tap distances in [0, 2]."""
    a = _CUBIC_A
    near = binary(ctx, "add", ctx.b.op("mul", x=binary(ctx, "sub", binary(ctx, "mul", dist, a + 2), a + 3),
                                       y=ctx.b.op("square", x=dist)), 1.0)
    far = ctx.b.op("mul", x=binary(ctx, "mul", binary(ctx, "sub", dist, 5.0), a), y=dist)
    far = binary(ctx, "sub", ctx.b.op("mul", x=binary(ctx, "add", far, 8 * a), y=dist), 4 * a)
    return ctx.b.op("select", cond=binary(ctx, "less_equal", dist, 1.0), a=near, b=far)


# -- _upsample_bilinear2d_aa -----------------------------------------------------------------------

@lowering(aten._upsample_bilinear2d_aa.default)
def upsample_bilinear2d_aa(ctx, self, output_size, align_corners, scales_h=None, scales_w=None):
    """_upsample_bilinear2d_aa(Tensor self, SymInt[2] output_size, bool align_corners,
    float? scales_h=None, float? scales_w=None) -> Tensor

    Antialiased resizing is separable: each output pixel is a fixed weighted sum of input pixels
    along each axis, the weights depending only on the sizes. They are computed here as [out, in]
    matrices and applied as products: along the width, then along the height (torch's order)."""
    if rank(self) != 4 or not self.dtype.is_float:
        raise ctx.unsupported("antialiased resizing of anything but a float [N, C, H, W] tensor "
                              "(torch resizes uint8 images with its own fixed-point weights)")
    sizes = list(self.shape[2:])
    if not all(isinstance(d, int) for d in sizes + list(output_size)):
        raise ctx.unsupported("antialiased resizing with a dynamic input or output size")
    out = self
    matrices = [_aa_matrix(n_in, n_out, align_corners, scale)
                for n_in, n_out, scale in zip(sizes, output_size, (scales_h, scales_w))]
    if matrices[1] is not None:
        out = ctx.b.op("matmul", x=out, y=ctx.const(matrices[1].T.astype(out.dtype.numpy), out.dtype))
    if matrices[0] is not None:
        out = ctx.b.op("matmul", x=ctx.const(matrices[0].astype(out.dtype.numpy), out.dtype), y=out)
    return out


def _aa_matrix(n_in: int, n_out: int, align_corners: bool, scale) -> np.ndarray | None:
    """The [n_out, n_in] weights of torch's antialiased linear filter (None: torch leaves the axis
    alone when its size does not change). Widened by the downscale factor, the triangle filter
    averages every input pixel it covers; each row is normalized to sum to 1."""
    if n_in == n_out:
        return None
    if align_corners:
        step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        step = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
    support = step if step >= 1.0 else 1.0
    inv = 1.0 / step if step >= 1.0 else 1.0
    widest = math.ceil(support) * 2 + 1
    matrix = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        center = step * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = lo + min(max(min(int(center + support + 0.5), n_in) - lo, 0), widest)
        taps = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs((taps - center + 0.5) * inv))
        if w.sum() != 0:
            w = w / w.sum()
        matrix[i, lo:hi] = w
    return matrix


# -- distances -------------------------------------------------------------------------------------

def _p_norm(ctx, d: Var, p: float, axes) -> Var:
    """The p-norm of d over `axes` as torch defines it for any p (p = 0 counts the nonzeros)."""
    reduce = lambda op, v: ctx.b.op(op, x=v, axes=axes, keep_dims=False)  # noqa: E731
    if p == 0:
        return reduce("reduce_sum", ctx.cast(binary(ctx, "not_equal", d, 0.0), d.dtype))
    if p == 2:
        return ctx.b.op("sqrt", x=reduce("reduce_sum", ctx.b.op("square", x=d)))
    a = ctx.b.op("abs", x=d)
    if p == math.inf:
        return reduce("reduce_max", a)
    if p == -math.inf:
        return reduce("reduce_min", a)
    if p == 1:
        return reduce("reduce_sum", a)
    return binary(ctx, "pow", reduce("reduce_sum", binary(ctx, "pow", a, float(p))), 1.0 / p)


def _float_pair(ctx, a: Var, b: Var):
    return ctx.promote(to_float(ctx, a), to_float(ctx, b))


@lowering(aten._cdist_forward.default)
def cdist(ctx, x1, x2, p, compute_mode=None):
    """_cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor

    torch computes p = 2 as sqrt(|a|^2 + |b|^2 - 2 a.b) with a matrix product when compute_mode is
    1, or when it is unset / 0 and either side has more than 25 points; otherwise (and for every
    other p) from the pairwise differences. The same choice keeps the results alike where the
    product form loses precision (nearly equal points)."""
    a, b = _float_pair(ctx, x1, x2)
    if rank(a) < 2 or rank(b) < 2:
        raise ctx.unsupported("cdist of tensors with fewer than 2 dims")
    rows, cols = a.shape[-2], b.shape[-2]
    if p < 0:
        raise ctx.unsupported(f"cdist with p = {p} (torch requires p >= 0)")
    # torch decides at run time; a dynamic size is taken to be a large one.
    many = not (isinstance(rows, int) and isinstance(cols, int)) or rows > 25 or cols > 25
    if p == 2 and (compute_mode == 1 or (compute_mode in (None, 0) and many)):
        norms = lambda v: ctx.b.op("reduce_sum", x=ctx.b.op("square", x=v), axes=[-1], keep_dims=True)  # noqa: E731
        dot = binary(ctx, "mul", ctx.b.op("matmul", x=a, y=b, transpose_y=True), -2.0)
        total = ctx.b.op("add", x=ctx.b.op("add", x=dot, y=norms(a)),
                         y=ctx.b.op("transpose", x=norms(b), perm=[*range(rank(b) - 2), rank(b) - 1, rank(b) - 2]))
        return ctx.b.op("sqrt", x=binary(ctx, "maximum", total, 0.0))
    diff = ctx.b.op("sub", x=ctx.b.op("expand_dims", x=a, axes=[-2]), y=ctx.b.op("expand_dims", x=b, axes=[-3]))
    return _p_norm(ctx, diff, p, [-1])


@lowering(aten._pdist_forward.default)
def pdist(ctx, self, p=2.0):
    """_pdist_forward(Tensor self, float p=2) -> Tensor

    The distances of rows i < j in row-major order: two gathers of constant row indices."""
    n = self.shape[0] if rank(self) == 2 else None
    if not isinstance(n, int):
        raise ctx.unsupported("pdist needs a 2-D input with a static number of rows")
    if n < 2:
        raise ctx.unsupported("pdist of fewer than 2 rows is empty; Core ML has no empty tensors")
    first, second = np.triu_indices(n, k=1)
    x = to_float(ctx, self)
    a, b = (ctx.b.op("gather", x=x, indices=ctx.const(rows.astype(np.int32), dt.int32), axis=0)
            for rows in (first, second))
    return _p_norm(ctx, ctx.b.op("sub", x=a, y=b), p, [1])


@lowering(aten.dist.default)
def dist(ctx, self, other, p=2):
    """dist(Tensor self, Tensor other, Scalar p=2) -> Tensor"""
    a, b = _float_pair(ctx, self, other)
    d = ctx.b.op("sub", x=a, y=b)
    return _p_norm(ctx, d, float(p), list(range(rank(d))) or None)


# -- _trilinear (nn.functional.bilinear) -----------------------------------------------------------

@lowering(aten._trilinear.default)
def trilinear(ctx, i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    """_trilinear(Tensor i1, Tensor i2, Tensor i3, int[] expand1, int[] expand2, int[] expand3,
    int[] sumdim, int unroll_dim=1) -> Tensor

    The sum over `sumdim` of the product of the three inputs, each unsqueezed at its `expand` dims.
    nn.functional.bilinear's pattern (x1 [B, I], W [O, I, J], x2 [B, J]) runs as one matrix
    product instead of materializing the [B, O, I, J] product."""
    dtype = ctx.result_dtype(i1, i2, i3)
    dtype = dt.int32 if dtype is dt.bool_ else dtype
    x1, w, x2 = ctx.promote(i1, i2, i3, dtype=dtype)
    if ([rank(x1), rank(w), rank(x2)] == [2, 3, 2] and list(expand1) == [1, 3] and list(expand2) == [0]
            and list(expand3) == [1, 2] and list(sumdim) == [2, 3]
            and all(isinstance(d, int) for d in w.shape)):
        o, i, j = w.shape
        flat = ctx.b.op("reshape", x=ctx.b.op("transpose", x=w, perm=[1, 0, 2]), shape=[i, o * j])
        t = ctx.b.op("matmul", x=x1, y=flat)  # [B, O*J]
        t = _reshape(ctx, t, [_dim(ctx, x1, 0), o, j])
        return ctx.b.op("reduce_sum", x=ctx.b.op("mul", x=t, y=ctx.b.op("expand_dims", x=x2, axes=[1])),
                        axes=[2], keep_dims=False)
    total = rank(x1) + len(expand1)
    parts = [ctx.b.op("expand_dims", x=v, axes=sorted(e)) if e else v
             for v, e in ((x1, expand1), (w, expand2), (x2, expand3))]
    out = ctx.b.op("mul", x=ctx.b.op("mul", x=parts[0], y=parts[1]), y=parts[2])
    if not sumdim:
        return out
    return ctx.b.op("reduce_sum", x=out, axes=normalize_dims(list(sumdim), total), keep_dims=False)


# -- embedding_bag ---------------------------------------------------------------------------------

_SUM, _MEAN, _MAX = 0, 1, 2


@lowering(aten._embedding_bag_forward_only.default, aten._embedding_bag.default)
def embedding_bag(ctx, weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=-1):
    """_embedding_bag(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq=False,
    int mode=0, bool sparse=False, Tensor? per_sample_weights=None, bool include_last_offset=False,
    int padding_idx=-1) -> (Tensor, Tensor, Tensor, Tensor)

    Bag b holds indices[offsets[b]:offsets[b + 1]]. Each looked-up row is scattered (add or max)
    into its bag's output row; rows of no bag (padding_idx, or past the last offset with
    include_last_offset) go to a spare row that is dropped. Empty bags give zeros.
    scale_grad_by_freq and sparse only affect gradients."""
    if ctx.node is not None and any(output_used(ctx, i) for i in (1, 2, 3)):
        raise ctx.unsupported("embedding_bag's offset2bag / bag_size / max_indices outputs are read")
    if mode not in (_SUM, _MEAN, _MAX):
        raise ctx.unsupported(f"embedding_bag mode {mode}")
    if rank(indices) != 1 or rank(offsets) != 1 or not indices.dtype.is_int or not offsets.dtype.is_int:
        raise ctx.unsupported("embedding_bag needs 1-D integer indices and offsets")
    if per_sample_weights is not None and mode != _SUM:
        raise ctx.unsupported("embedding_bag per_sample_weights outside mode 'sum' (torch refuses it)")
    length, starts = _dim(ctx, indices, 0), ctx.cast(offsets, dt.int32)
    bags = _dim(ctx, offsets, 0)
    if include_last_offset:
        bags = bags - 1 if isinstance(bags, int) else binary(ctx, "sub", bags, 1)
    idx = ctx.cast(indices, dt.int32)
    rows = ctx.b.op("gather", x=to_float(ctx, weight), indices=idx, axis=0)  # [L, D]
    # The bag of position l is the number of offsets <= l, minus one: mark each start, then cumsum.
    marks = ctx.b.op("scatter", data=_fill(ctx, [_plus(ctx, length, 1)], 0, dt.int32),
                     indices=clamp_between(ctx, starts, 0, length),
                     updates=_fill(ctx, [_dim(ctx, starts, 0)], 1, dt.int32), axis=0, mode="add")
    bag = binary(ctx, "sub", ctx.b.op("cumsum", x=slice_axis(ctx, marks, 0, 0, length), axis=0), 1)
    drop = ctx.b.op("logical_or", x=binary(ctx, "less", bag, 0), y=binary(ctx, "greater_equal", bag, bags))
    if padding_idx is not None and padding_idx >= 0:
        drop = ctx.b.op("logical_or", x=drop, y=binary(ctx, "equal", idx, padding_idx))
    bag = select(ctx, drop, bags, bag)

    dim = _dim(ctx, rows, 1)
    if per_sample_weights is not None:
        psw = ctx.b.op("expand_dims", x=ctx.cast(per_sample_weights, rows.dtype), axes=[1])
        rows = ctx.b.op("mul", x=rows, y=psw)
    spare = _plus(ctx, bags, 1)
    start = -math.inf if mode == _MAX else 0.0
    out = ctx.b.op("scatter", data=_fill(ctx, [spare, dim], start, rows.dtype), indices=bag, updates=rows,
                   axis=0, mode="max" if mode == _MAX else "add")
    out = slice_axis(ctx, out, 0, 0, bags)
    if mode == _SUM:
        return out, None, None, None
    count = ctx.b.op("scatter", data=_fill(ctx, [spare], 0, dt.int32), indices=bag,
                     updates=_fill(ctx, [length], 1, dt.int32), axis=0, mode="add")
    count = ctx.b.op("expand_dims", x=slice_axis(ctx, count, 0, 0, bags), axes=[1])
    if mode == _MEAN:
        return binary(ctx, "real_div", out, binary(ctx, "maximum", ctx.cast(count, out.dtype), 1.0)), None, None, None
    return select(ctx, binary(ctx, "equal", count, 0), 0.0, out), None, None, None


def _plus(ctx, size, k: int):
    return size + k if isinstance(size, int) else binary(ctx, "add", size, k)


# -- segment_reduce --------------------------------------------------------------------------------

_SEGMENT_REDUCTIONS = {"sum": "reduce_sum", "mean": "reduce_sum", "prod": "reduce_prod",
                       "max": "reduce_max", "min": "reduce_min"}


@lowering(aten.segment_reduce.default)
def segment_reduce(ctx, data, reduce, lengths=None, indices=None, offsets=None, axis=0, unsafe=False,
                   initial=None):
    """segment_reduce(Tensor data, str reduce, *, Tensor? lengths=None, Tensor? indices=None,
    Tensor? offsets=None, int axis=0, bool unsafe=False, Scalar? initial=None) -> Tensor

    Segments along `axis` come from lengths (one segment per entry of the last dim, after the
    previous one) or offsets (segment s spans [offsets[s], offsets[s + 1])). A [.., S, L] mask of
    segment membership picks each segment's values, the others become the reduction's identity, and
    one reduction over L gives all segments. `initial` starts every segment; an empty one is
    `initial`, or 0 / 1 / -inf / inf for sum / prod / max / min and NaN for mean. `unsafe` only
    skips torch's argument checks."""
    if reduce not in _SEGMENT_REDUCTIONS:
        raise ctx.unsupported(f"segment_reduce reduction {reduce!r}")
    if indices is not None or (lengths is None) == (offsets is None):
        raise ctx.unsupported("segment_reduce needs exactly one of lengths or offsets (torch has no "
                              "indices-based reduction)")
    x = to_float(ctx, data)
    axis = axis % rank(x)
    bounds = ctx.cast(lengths if lengths is not None else offsets, dt.int32)
    if rank(bounds) != axis + 1:
        raise ctx.unsupported(f"segment_reduce lengths/offsets of rank {rank(bounds)} for axis {axis}")
    if lengths is not None:
        ends = ctx.b.op("cumsum", x=bounds, axis=axis)
        starts = ctx.b.op("sub", x=ends, y=bounds)
    else:
        starts, ends = slice_axis(ctx, bounds, axis, 0, -1), slice_axis(ctx, bounds, axis, 1, None)
    position = _arange(ctx, _dim(ctx, x, axis))  # along L
    inside = ctx.b.op("logical_and",
                      x=ctx.b.op("greater_equal", x=position, y=ctx.b.op("expand_dims", x=starts, axes=[-1])),
                      y=ctx.b.op("less", x=position, y=ctx.b.op("expand_dims", x=ends, axes=[-1])))  # [.., S, L]
    trailing = rank(x) - axis - 1
    if trailing:
        inside = ctx.b.op("expand_dims", x=inside, axes=list(range(-trailing, 0)))
    identity = {"prod": 1.0, "max": -math.inf, "min": math.inf}.get(reduce, 0.0)
    picked = select(ctx, inside, ctx.b.op("expand_dims", x=x, axes=[axis]), identity)
    out = ctx.b.op(_SEGMENT_REDUCTIONS[reduce], x=picked, axes=[axis + 1], keep_dims=False)
    if initial is not None:
        combine = {"prod": "mul", "max": "maximum", "min": "minimum"}.get(reduce, "add")
        out = binary(ctx, combine, out, float(initial))
    if reduce != "mean":
        return out
    count = ctx.cast(ctx.b.op("sub", x=ends, y=starts), out.dtype)
    if trailing:
        count = ctx.b.op("expand_dims", x=count, axes=list(range(-trailing, 0)))
    empty = binary(ctx, "equal", count, 0.0)
    mean = ctx.b.op("real_div", x=out, y=select(ctx, empty, 1.0, count))
    return select(ctx, empty, float(initial) if initial is not None else math.nan, mean)


# -- diagonal_scatter, addmv, ldexp ----------------------------------------------------------------

@lowering(aten.diagonal_scatter.default)
def diagonal_scatter(ctx, self, src, offset=0, dim1=0, dim2=1):
    """diagonal_scatter(Tensor self, Tensor src, int offset=0, int dim1=0, int dim2=1) -> Tensor

    With dim1 and dim2 moved to the front, the diagonal is a constant list of (row, column) pairs
    and src (its last dim moved to the front) the rows that scatter_nd writes there."""
    r = rank(self)
    dim1, dim2 = dim1 % r, dim2 % r
    rows, cols = self.shape[dim1], self.shape[dim2]
    if not (isinstance(rows, int) and isinstance(cols, int)):
        raise ctx.unsupported("diagonal_scatter on dims of dynamic size")
    length = max(0, min(rows + min(offset, 0), cols - max(offset, 0)))
    if length == 0:
        raise ctx.unsupported("diagonal_scatter onto an empty diagonal")
    dtype = self.dtype
    work = dt.int32 if dtype is dt.bool_ else dtype
    data, update = ctx.promote(self, src, dtype=work)
    perm = [dim1, dim2] + [d for d in range(r) if d not in (dim1, dim2)]
    data = ctx.b.op("transpose", x=data, perm=perm)
    update = ctx.b.op("transpose", x=update, perm=[r - 2, *range(r - 2)]) if r > 2 else update
    i = np.arange(length)
    pairs = np.stack([i + max(-offset, 0), i + max(offset, 0)], axis=1).astype(np.int32)
    out = ctx.b.op("scatter_nd", data=data, indices=ctx.const(pairs, dt.int32), updates=update, mode="update")
    out = ctx.b.op("transpose", x=out, perm=[int(a) for a in np.argsort(perm)])
    return ctx.cast(out, dtype)


@lowering(aten.addmv.default)
def addmv(ctx, self, mat, vec, beta=1, alpha=1):
    """addmv(Tensor self, Tensor mat, Tensor vec, *, Scalar beta=1, Scalar alpha=1) -> Tensor"""
    dtype = ctx.result_dtype(self, mat, vec)
    if dtype is dt.bool_:
        raise ctx.unsupported("addmv of bool tensors")
    m, v = ctx.promote(mat, vec, dtype=dtype)
    # A rank-1 `y` of matmul is mis-typed by coremltools' loader: multiply by a column instead.
    product = ctx.b.op("squeeze", x=ctx.b.op("matmul", x=m, y=ctx.b.op("expand_dims", x=v, axes=[1])), axes=[1])
    return _beta_self_plus_alpha_product(ctx, ctx.cast(self, dtype), product, beta, alpha)


@lowering(aten.ldexp.Tensor)
def ldexp(ctx, self, other):
    """ldexp.Tensor(Tensor self, Tensor other) -> Tensor

    self * 2^other in floats, as torch computes it (so 2^other may overflow first, as there)."""
    dtype = ctx.result_dtype(self, other)
    dtype = dtype if dtype.is_float else ctx.float_dtype
    x, e = ctx.promote(to_float(ctx, self), to_float(ctx, other), dtype=dtype)
    return ctx.b.op("mul", x=x, y=ctx.b.op("exp2", x=e))


# -- transposed convolution with a run-time weight ------------------------------------------------

def conv_transpose_as_conv(ctx, x, w, b, stride, pad, dilation, output_padding, groups):
    """A transposed convolution is the plain convolution of the input spread out by the stride
    (stride - 1 zeros between samples) and padded by dilation * (K - 1) - padding (plus
    output_padding after), with each group's kernel flipped and its in/out channels swapped. The
    weight stays a run-time value, which MIL conv accepts and conv_transpose (in coremltools'
    loader) does not. x [N, C_in, *D], w [C_in, C_out / groups, *K]; pad holds before/after pairs."""
    n = rank(x) - 2
    c_in, c_group = w.shape[0], w.shape[1]
    kernel = list(w.shape[2:])
    if not (isinstance(c_in, int) and isinstance(c_group, int)):
        raise ctx.unsupported("transposed convolution with a run-time weight of dynamic channel counts")
    if any(s > 1 for s in stride):
        # A depthwise transposed convolution by a constant 1-tap kernel inserts the zeros.
        ones = ctx.const(np.ones([c_in, 1] + [1] * n, x.dtype.numpy), x.dtype)
        x = ctx.b.op("conv_transpose", x=x, weight=ones, strides=stride, groups=c_in, pad_type="valid")
    conv_pad = []
    for r in range(n):
        full = dilation[r] * (kernel[r] - 1)
        before, after = full - pad[2 * r], full - pad[2 * r + 1] + output_padding[r]
        if before < 0 or after < 0:  # more padding than kernel: crop the spread input instead
            x = slice_axis(ctx, x, 2 + r, max(-before, 0), after if after < 0 else None)
        conv_pad += [max(before, 0), max(after, 0)]
    per = c_in // groups
    w = ctx.b.op("reshape", x=w, shape=[groups, per, c_group, prod(kernel)])
    w = ctx.b.op("reverse", x=ctx.b.op("transpose", x=w, perm=[0, 2, 1, 3]), axes=[3])  # flips every axis
    w = ctx.b.op("reshape", x=w, shape=[groups * c_group, per] + kernel)
    if any(d != 1 for d in dilation):
        w, dilation = _dilate_kernel(ctx, w, dilation), [1] * n
    return ctx.b.op("conv", x=x, weight=w, bias=b, strides=[1] * n, pad_type="custom", pad=conv_pad,
                    dilations=dilation, groups=groups)
