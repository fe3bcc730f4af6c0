"""Pooling: max / avg pooling over 1 to 3 spatial dims and adaptive pooling, on MIL `max_pool`,
`avg_pool` and `reduce_*`.

MIL pools return no indices: when a node's indices are read they are computed from the windows
(`sliding_windows` + argmax), which needs static spatial sizes.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil import dtypes as dt
from ..registry import lowering
from ._nn_helpers import check_node_shape, output_used, prod, rank

aten = torch.ops.aten


def _batched(ctx, input, n, pool):
    """Run `pool` on [N, C, *D]; an unbatched [C, *D] input gets a batch dim added and removed."""
    if rank(input) == n + 2:
        return pool(input)
    if rank(input) != n + 1:
        raise ctx.unsupported(f"{n}D pooling of a rank-{rank(input)} input")
    out = pool(ctx.b.op("expand_dims", x=input, axes=[0]))
    return ctx.b.op("squeeze", x=out, axes=[0])


def _window(ctx, input, n, kernel_size, stride, padding):
    if not input.dtype.is_float:
        raise ctx.unsupported("pooling of an integer tensor (MIL pools take floats only)")
    kernel = _per_dim(kernel_size, n)
    strides = _per_dim(stride, n) if stride else kernel  # [] means "same as the kernel"
    pad = [p for p in _per_dim(padding, n) for _ in range(2)]
    return kernel, strides, pad


def _per_dim(value, n):
    value = [int(v) for v in ([value] if isinstance(value, int) else value)]
    return value * n if len(value) == 1 else value


def _ceil_mode_as_padding(ctx, input, kernel, strides, pad):
    """torch's ceil_mode as extra padding after each spatial dim, so that floor-mode pooling gives
    the same windows (used where MIL's own ceil_mode does not apply). Returns (new pad, any extra)."""
    spatial = input.shape[-len(kernel):]
    if not all(isinstance(d, int) for d in spatial):
        raise ctx.unsupported("ceil_mode pooling over a dynamic spatial size")
    pad, grew = list(pad), False
    for r, (d, k, s) in enumerate(zip(spatial, kernel, strides)):
        before, after = pad[2 * r], pad[2 * r + 1]
        count = -(-(d + before + after - k) // s) + 1
        if (count - 1) * s >= d + before:  # torch: the last window must start inside the input
            count -= 1
        extra = max(0, (count - 1) * s + k - (d + before + after))
        pad[2 * r + 1] += extra
        grew = grew or extra > 0
    return pad, grew


def _max_pool(ctx, input, n, kernel_size, stride, padding, dilation, ceil_mode):
    if any(d != 1 for d in _per_dim(dilation, n)):  # MIL max_pool has no dilation
        return _max_pool_with_indices(ctx, input, n, kernel_size, stride, padding, dilation,
                                      ceil_mode, need_indices=True)[0]
    kernel, strides, pad = _window(ctx, input, n, kernel_size, stride, padding)
    if ceil_mode and n > 2:
        # MIL's ceil_mode is 1D/2D only; padding never wins a max, so extra padding does the same.
        pad, _ = _ceil_mode_as_padding(ctx, input, kernel, strides, pad)
        ceil_mode = False
    out = _batched(ctx, input, n, lambda x: ctx.b.op(
        "max_pool", x=x, kernel_sizes=kernel, strides=strides, pad_type="custom", pad=pad,
        ceil_mode=bool(ceil_mode)))
    return check_node_shape(ctx, out, 0, "max_pool")


def _without_indices(ctx, values):
    # A dry run (no node) cannot see the users; it accepts, and the real lowering refuses when the
    # indices are read.
    if ctx.node is not None and output_used(ctx, 1):
        raise ctx.unsupported("max pooling indices are read and the spatial size is dynamic")
    return values, None


def _max_pool_with_indices(ctx, input, n, kernel_size, stride, padding, dilation, ceil_mode,
                           need_indices=False):
    """(values, indices) when the indices are read (or dilation asks for explicit windows), else
    max_pool's values only."""
    dilation = _per_dim(dilation, n)
    if not (need_indices or output_used(ctx, 1)) and all(d == 1 for d in dilation):
        return _max_pool(ctx, input, n, kernel_size, stride, padding, dilation, ceil_mode), None
    kernel, strides, pad = _window(ctx, input, n, kernel_size, stride, padding)
    if ceil_mode:
        spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        pad, _ = _ceil_mode_as_padding(ctx, input, spans, strides, pad)
    return _batched_pair(ctx, input, n, lambda x: _windowed_argmax(ctx, x, kernel, strides, pad,
                                                                   dilation))


def _batched_pair(ctx, input, n, pool):
    """`_batched` for a pool returning (values, indices)."""
    if rank(input) == n + 2:
        return pool(input)
    if rank(input) != n + 1:
        raise ctx.unsupported(f"{n}D pooling of a rank-{rank(input)} input")
    values, indices = pool(ctx.b.op("expand_dims", x=input, axes=[0]))
    return ctx.b.op("squeeze", x=values, axes=[0]), ctx.b.op("squeeze", x=indices, axes=[0])


def _windowed_argmax(ctx, x, kernel, strides, pad, dilation):
    """Max pooling with torch's indices (flat positions in each unpadded [*D] plane) on [N, C, *D]
    with static D: pad with -inf, cut the (dilated) windows out with `sliding_windows`, flatten each
    into the last axis, and take max / argmax there (argmax picks the first maximum, like torch).
    The window position plus the tap's offset gives the flat index."""
    n, spatial = len(kernel), list(x.shape[2:])
    if not all(isinstance(d, int) for d in spatial):
        raise ctx.unsupported("max pooling with indices or dilation over a dynamic spatial size")
    if any(pad):
        x = ctx.b.op("pad", x=x, pad=[0, 0, 0, 0] + pad, mode="constant", constant_val=float("-inf"))
    for r, (k, s, d) in enumerate(zip(kernel, strides, dilation)):
        x = ctx.b.op("sliding_windows", x=x, axis=2 + 2 * r, size=(k - 1) * d + 1, stride=s)
        if d > 1:  # keep every d-th element of each window
            step = [1] * rank(x)
            step[3 + 2 * r] = d
            x = ctx.b.op("slice_by_index", x=x, begin=[0] * rank(x), end=[0] * rank(x), stride=step,
                         begin_mask=[True] * rank(x), end_mask=[True] * rank(x))
    counts = [int(x.shape[2 + 2 * r]) for r in range(n)]
    window_axes, tap_axes = [2 + 2 * r for r in range(n)], [3 + 2 * r for r in range(n)]
    x = ctx.b.op("transpose", x=x, perm=[0, 1] + window_axes + tap_axes)
    windows = ctx.b.op("reshape", x=x, shape=ctx.int_list(
        [_size(ctx, x, 0), _size(ctx, x, 1)] + counts + [prod(kernel)]))
    values = ctx.b.op("reduce_max", x=windows, axes=[-1], keep_dims=False)
    tap = ctx.b.op("reduce_argmax", x=windows, axis=-1, keep_dims=False)
    corner, offsets = _flat_positions(spatial, counts, kernel, strides, pad, dilation)
    offset = ctx.b.op("gather", x=ctx.const(offsets.reshape(-1), dt.int32), indices=tap, axis=0)
    return values, ctx.b.op("add", x=offset, y=ctx.const(corner, dt.int32))


def _flat_positions(spatial, counts, kernel, strides, pad, dilation):
    """Flat position (in the unpadded plane) of each window's first tap, [*counts], and of each tap
    relative to it, [*kernel]."""
    n = len(spatial)
    plane_strides = [prod(spatial[r + 1:]) for r in range(n)]
    corner, offsets = np.zeros(counts, dtype=np.int32), np.zeros(kernel, dtype=np.int32)
    for r in range(n):
        along_axis = [-1 if i == r else 1 for i in range(n)]
        starts = (np.arange(counts[r]) * strides[r] - pad[2 * r]) * plane_strides[r]
        corner += starts.reshape(along_axis).astype(np.int32)
        taps = np.arange(kernel[r]) * dilation[r] * plane_strides[r]
        offsets += taps.reshape(along_axis).astype(np.int32)
    return corner, offsets


def _size(ctx, x, axis):
    """Dim `axis` of x: an int when static, else an int32 scalar Var."""
    if isinstance(x.shape[axis], int):
        return x.shape[axis]
    return ctx.b.op("gather", x=ctx.b.op("shape", x=x), indices=axis, axis=0)


@lowering(aten.max_pool2d_with_indices.default)
def max_pool2d_with_indices(ctx, self, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """max_pool2d_with_indices(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0,
    int[2] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)"""
    return _max_pool_with_indices(ctx, self, 2, kernel_size, stride, padding, dilation, ceil_mode)


@lowering(aten.max_pool3d_with_indices.default)
def max_pool3d_with_indices(ctx, self, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """max_pool3d_with_indices(Tensor self, int[3] kernel_size, int[3] stride=[], int[3] padding=0,
    int[3] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)"""
    return _max_pool_with_indices(ctx, self, 3, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool_without_indices(n):
    def max_pool(ctx, self, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        return _max_pool(ctx, self, n, kernel_size, stride, padding, dilation, ceil_mode)

    max_pool.__doc__ = f"""max_pool{n}d(Tensor self, int[{n}] kernel_size, int[{n}] stride=[],
    int[{n}] padding=0, int[{n}] dilation=1, bool ceil_mode=False) -> Tensor

    Kept whole: torch would route it through a pool with indices (1D: an unsqueezed 2D one)."""
    return max_pool


for _n, _op in ((1, aten.max_pool1d.default), (2, aten.max_pool2d.default), (3, aten.max_pool3d.default)):
    lowering(_op)(_max_pool_without_indices(_n))


def _avg_pool(ctx, input, n, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    kernel, strides, pad = _window(ctx, input, n, kernel_size, stride, padding)
    if ceil_mode and (n > 2 or divisor_override is not None):
        # Extra padding instead of ceil_mode: fine when padding is excluded from the average, and
        # with divisor_override (every window then spans its full size, so mean * size = sum).
        if not any(pad):
            # Without padding torch's divisor is the window's part inside the input: "exclude".
            count_include_pad = False
        pad, grew = _ceil_mode_as_padding(ctx, input, kernel, strides, pad)
        if grew and count_include_pad and divisor_override is None:
            raise ctx.unsupported("3D avg pooling with ceil_mode and count_include_pad (torch does "
                                  "not count the part of a window beyond the padding)")
        ceil_mode = False
    exclude = not count_include_pad and divisor_override is None
    out = _batched(ctx, input, n, lambda x: ctx.b.op(
        "avg_pool", x=x, kernel_sizes=kernel, strides=strides, pad_type="custom", pad=pad,
        ceil_mode=bool(ceil_mode), exclude_padding_from_average=exclude))
    check_node_shape(ctx, out, what="avg_pool")
    if divisor_override is not None:
        # Every window counts its full size (padding included), so sum = mean * window size.
        (scale,) = ctx.promote(prod(kernel) / divisor_override, dtype=out.dtype)
        out = ctx.b.op("mul", x=out, y=scale)
    return out


@lowering(aten.avg_pool1d.default)
def avg_pool1d(ctx, self, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True):
    """avg_pool1d(Tensor self, int[1] kernel_size, int[1] stride=[], int[1] padding=0,
    bool ceil_mode=False, bool count_include_pad=True) -> Tensor"""
    return _avg_pool(ctx, self, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


@lowering(aten.avg_pool2d.default)
def avg_pool2d(ctx, self, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """avg_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0,
    bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor"""
    return _avg_pool(ctx, self, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


@lowering(aten.avg_pool3d.default)
def avg_pool3d(ctx, self, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """avg_pool3d(Tensor self, int[3] kernel_size, int[3] stride=[], int[3] padding=0,
    bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor"""
    return _avg_pool(ctx, self, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive(ctx, input, output_size, kind):
    """Adaptive pooling is a plain pool when each output size divides its input size (equal,
    non-overlapping windows), and a reduction over the spatial dims when the output is all ones
    (which also works for dynamic sizes). Other sizes have uneven windows: refused."""
    n = len(output_size)
    if not input.dtype.is_float:
        raise ctx.unsupported("pooling of an integer tensor")
    output_size = [int(s) for s in output_size]
    spatial = list(input.shape[-n:])
    if all(o == 1 for o in output_size):
        return ctx.b.op(f"reduce_{kind}", x=input, axes=list(range(-n, 0)), keep_dims=True)
    if not all(isinstance(d, int) and o > 0 and d % o == 0 for d, o in zip(spatial, output_size)):
        if not all(isinstance(d, int) for d in spatial):
            raise ctx.unsupported(f"adaptive {kind} pooling from {spatial} to {output_size}: the "
                                  "windows are uneven and the input size is dynamic")
        if kind == "avg" and n <= 2:
            return _uneven_adaptive_avg(ctx, input, spatial, output_size)
        return _uneven_adaptive_by_slices(ctx, input, spatial, output_size, kind)
    kernel = [d // o for d, o in zip(spatial, output_size)]
    return _batched(ctx, input, n, lambda x: ctx.b.op(
        f"{kind}_pool", x=x, kernel_sizes=kernel, strides=kernel, pad_type="valid"))


def _averaging_matrix(size_in: int, size_out: int) -> np.ndarray:
    """[out, in] weights that average each of torch's adaptive windows."""
    m = np.zeros((size_out, size_in), dtype=np.float32)
    for i, (start, end) in enumerate(_adaptive_windows(size_in, size_out)):
        m[i, start:end] = 1.0 / (end - start)
    return m


def _uneven_adaptive_avg(ctx, input, spatial, output_size):
    """A window mean is separable: average along H with one constant matrix product and along W
    with another (last one or two axes, static sizes)."""
    out = input
    if len(spatial) == 2:
        rows = ctx.const(_averaging_matrix(spatial[0], output_size[0]), input.dtype)
        out = ctx.b.op("matmul", x=rows, y=out)
    cols = ctx.const(_averaging_matrix(spatial[-1], output_size[-1]), input.dtype)
    return ctx.b.op("matmul", x=out, y=cols, transpose_y=True)


def _adaptive_windows(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows [floor(i * in / out), ceil((i + 1) * in / out))."""
    return [((i * size_in) // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]


def _uneven_adaptive_by_slices(ctx, input, spatial, output_size, kind):
    """Max (and mean) over a box is separable: reduce each window along one axis at a time, one
    slice per output element, and concatenate (static spatial sizes)."""
    out, ndim = input, rank(input)
    mil_op = "reduce_max" if kind == "max" else "reduce_mean"
    for axis, d, o in zip(range(ndim - len(spatial), ndim), spatial, output_size):
        if d == o:
            continue
        parts = []
        for start, end in _adaptive_windows(d, o):
            begin, size = [0] * ndim, [-1] * ndim
            begin[axis], size[axis] = start, end - start
            window = ctx.b.op("slice_by_size", x=out, begin=begin, size=size)
            parts.append(ctx.b.op(mil_op, x=window, axes=[axis], keep_dims=True))
        out = ctx.b.op("concat", values=parts, axis=axis)
    return out


@lowering(aten._adaptive_avg_pool2d.default, aten._adaptive_avg_pool3d.default,
          aten.adaptive_avg_pool1d.default)
def adaptive_avg_pool(ctx, self, output_size):
    """_adaptive_avg_pool{2,3}d / adaptive_avg_pool1d(Tensor self, SymInt[] output_size) -> Tensor"""
    return _adaptive(ctx, self, output_size, "avg" if any(o != 1 for o in output_size) else "mean")


@lowering(aten.adaptive_max_pool2d.default, aten.adaptive_max_pool3d.default,
          aten.adaptive_max_pool1d.default)
def adaptive_max_pool(ctx, self, output_size):
    """adaptive_max_pool{1,2,3}d(Tensor self, int[] output_size) -> (Tensor, Tensor)

    With the indices read (static sizes): a max pool with indices when the windows are even,
    else window by window."""
    n, spatial = len(output_size), list(self.shape[-len(output_size):])
    if ctx.node is not None and output_used(ctx, 1) and all(isinstance(d, int) for d in spatial):
        if all(d % o == 0 for d, o in zip(spatial, output_size)):
            kernel = [d // o for d, o in zip(spatial, output_size)]
            return _max_pool_with_indices(ctx, self, n, kernel, kernel, 0, 1, False)
        if not self.dtype.is_float:
            raise ctx.unsupported("pooling of an integer tensor")
        return _uneven_adaptive_max_with_indices(ctx, self, spatial, [int(o) for o in output_size])
    return _without_indices(ctx, _adaptive(ctx, self, output_size, "max"))


def _uneven_adaptive_max_with_indices(ctx, input, spatial, output_size):
    """Reduce one spatial axis at a time, last first, one slice per window: each step keeps the
    window maxima and, gathered at the argmax, the flat index built so far plus this axis' part.
    The first maximum in the last axis, then in the next, ... is torch's row-major first one."""
    values, flat, ndim = input, None, rank(input)
    axes = list(range(ndim - len(spatial), ndim))
    for axis, d, o in reversed(list(zip(axes, spatial, output_size))):
        plane_stride = prod(spatial[axes.index(axis) + 1:])
        maxima, positions = [], []
        for start, end in _adaptive_windows(d, o):
            begin, size = [0] * ndim, [-1] * ndim
            begin[axis], size[axis] = start, end - start
            window = ctx.b.op("slice_by_size", x=values, begin=begin, size=size)
            maxima.append(ctx.b.op("reduce_max", x=window, axes=[axis], keep_dims=True))
            tap = ctx.b.op("reduce_argmax", x=window, axis=axis, keep_dims=True)
            position = ctx.b.op("mul", x=ctx.b.op("add", x=tap, y=ctx.const(start, dt.int32)),
                                y=ctx.const(plane_stride, dt.int32))
            if flat is not None:
                earlier = ctx.b.op("slice_by_size", x=flat, begin=begin, size=size)
                position = ctx.b.op("add", x=position, y=ctx.b.op(
                    "gather_along_axis", x=earlier, indices=tap, axis=axis))
            positions.append(position)
        values = ctx.b.op("concat", values=maxima, axis=axis)
        flat = ctx.b.op("concat", values=positions, axis=axis)
    return values, flat
