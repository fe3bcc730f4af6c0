"""MIL tensor ops that build, combine, split or describe tensors: band_part, cumsum, fill, fill_like,
non_zero, one_hot, pad, range_1d, tile, flatten2d, shape, concat, split, stack and identity.

Sorting and selection ops (argsort, topk, non_maximum_suppression) are in `tensor_operation_sort.py`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import Symbol, TensorType
from .infer import fresh_dims, same_as
from .spec import ANY, In, mil_op
from .tensor_transformation import (
    BOOL, I32, STR, T15, as_list, axis_of, dim_add, dim_mul, dim_prod, int_param, int_values, vector_len,
)

_T_NUM = (dt.fp16, dt.fp32, dt.int32)


def _scalar_value(ctx, name: str):
    """The compile-time value of a one-element input as a python number, or None."""
    v = ctx.value(name)
    if v is None:
        return None
    if v.size != 1:
        raise ctx.error(f"input {name!r} must hold one value, got shape {list(v.shape)}")
    return v.reshape(-1)[0].item()


# -- masks and running sums ----------------------------------------------------------------------

def _band_part_type(ctx):
    if ctx.rank("x") < 2:
        raise ctx.error(f"input 'x' must have rank >= 2, got {ctx.type('x')}")
    return ctx.type("x")


@mil_op("band_part", domains={"T": T15},
        inputs=[In("x", "T"), In("lower", I32, const=True, optional=True, param=True, default=-1),
                In("upper", I32, const=True, optional=True, param=True, default=-1)],
        infer=_band_part_type)
def band_part(x, lower, upper):
    """Zero everything outside a band of the innermost matrices: element (m, n) is kept when
    m - n <= lower and n - m <= upper; a negative bound keeps its whole triangle."""
    rows = torch.arange(x.shape[-2]).unsqueeze(1)
    cols = torch.arange(x.shape[-1]).unsqueeze(0)
    keep = torch.ones(x.shape[-2:], dtype=torch.bool)
    if lower >= 0:
        keep &= rows - cols <= lower
    if upper >= 0:
        keep &= cols - rows <= upper
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype))


def _cumsum_type(ctx):
    axis_of(ctx, "axis", int_param(ctx, "axis"), ctx.rank("x"))
    return ctx.type("x")


@mil_op("cumsum", domains={"T": _T_NUM},
        inputs=[In("x", "T"), In("axis", I32, const=True, optional=True, param=True, default=0),
                In("exclusive", BOOL, const=True, optional=True, param=True, default=False),
                In("reverse", BOOL, const=True, optional=True, param=True, default=False)],
        infer=_cumsum_type)
def cumsum(x, axis, exclusive, reverse):
    """Running sum along `axis`. exclusive: each output excludes its own element (starts at 0);
    reverse: sum from the far end."""
    if x.dim() == 0:
        return x
    axis %= x.dim()
    y = x.flip(axis) if reverse else x
    out = torch.cumsum(y, axis, dtype=y.dtype)
    if exclusive and out.shape[axis]:
        out = torch.cat((torch.zeros_like(out.narrow(axis, 0, 1)), out.narrow(axis, 0, out.shape[axis] - 1)), axis)
    return out.flip(axis) if reverse else out


# -- constructors --------------------------------------------------------------------------------

def _fill_value_dtype(ctx, name="value"):
    if not ctx.has(name):
        return dt.fp32  # the default value is 0.0
    if ctx.shape(name):
        raise ctx.error(f"input {name!r} must be a scalar, got {ctx.type(name)}")
    return ctx.dtype(name)


def _fill_type(ctx):
    n = vector_len(ctx, "shape")
    shape = int_values(ctx, "shape")
    if shape is not None and min(shape, default=0) < 0:
        raise ctx.error(f"input 'shape' {shape} has a negative entry")
    return TensorType(_fill_value_dtype(ctx), fresh_dims(n) if shape is None else tuple(shape))


@mil_op("fill", domains={"T": T15},
        inputs=[In("shape", I32), In("value", "T", const=True, optional=True, param=True, default=0.0)],
        infer=_fill_type)
def fill(shape, value):
    """A tensor of shape `shape` holding `value` everywhere (default 0.0, fp32)."""
    return torch.full([int(v) for v in shape.reshape(-1).tolist()], value)


@mil_op("fill_like", since=Target.iOS16, domains={"T": T15, "U": T15},
        inputs=[In("ref_tensor", "T"), In("value", "U", const=True, optional=True, param=True, default=0.0)],
        infer=lambda ctx: TensorType(_fill_value_dtype(ctx), ctx.shape("ref_tensor")))
def fill_like(ref_tensor, value):
    """A tensor shaped like `ref_tensor`, holding `value` everywhere; the dtype is value's."""
    return torch.full(ref_tensor.shape, value)


def _range_type(ctx):
    start, end, step = (_scalar_value(ctx, n) for n in ("start", "end", "step"))
    if step == 0:
        raise ctx.error("input 'step' must not be 0")
    if start is None or end is None or step is None:
        return TensorType(ctx.dtype("start"), (Symbol.fresh(),))
    return TensorType(ctx.dtype("start"), (max(0, math.ceil((end - start) / step)),))


@mil_op("range_1d", domains={"T": _T_NUM}, inputs=[In("end", "T"), In("start", "T"), In("step", "T")],
        infer=_range_type)
def range_1d(end, start, step):
    """The 1-D sequence start, start + step, ... stopping before `end` (like numpy.arange)."""
    return torch.arange(start.reshape(-1)[0].item(), end.reshape(-1)[0].item(), step.reshape(-1)[0].item())


def _non_zero_type(ctx):
    v = ctx.value("x")
    count = Symbol.fresh() if v is None else int(np.count_nonzero(v))
    return TensorType(dt.int32, (count, ctx.rank("x")))


@mil_op("non_zero", domains={"T": T15}, inputs=[In("x", "T")], infer=_non_zero_type)
def non_zero(x):
    """The coordinates of x's non-zero elements, one row each in row-major order: [count, rank(x)]."""
    return torch.nonzero(x)


def _one_hot_type(ctx):
    shape = list(ctx.shape("indices"))
    axis = int_param(ctx, "axis")
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ctx.error(f"input 'axis': {axis} is out of range for output rank {len(shape) + 1}")
    depth = _scalar_value(ctx, "one_hot_vector_size")
    if depth is not None and depth < 0:
        raise ctx.error(f"input 'one_hot_vector_size' must be >= 0, got {depth}")
    shape.insert(axis + len(shape) + 1 if axis < 0 else axis, Symbol.fresh() if depth is None else depth)
    dtype = next((ctx.dtype(n) for n in ("on_value", "off_value") if ctx.has(n)), dt.int32)
    return TensorType(dtype, tuple(shape))


@mil_op("one_hot", domains={"T": T15},
        inputs=[In("indices", I32), In("one_hot_vector_size", I32),
                In("axis", I32, const=True, optional=True, param=True, default=-1),
                In("on_value", "T", const=True, optional=True, param=True, default=1),
                In("off_value", "T", const=True, optional=True, param=True, default=0)],
        infer=_one_hot_type)
def one_hot(indices, one_hot_vector_size, axis, on_value, off_value):
    """One-hot vectors of length one_hot_vector_size inserted as a new dim at `axis`: on_value where
    the position equals the index, off_value elsewhere (an out-of-range index gives all off_value)."""
    depth = int(one_hot_vector_size.reshape(-1)[0])
    rank = indices.dim() + 1
    axis = axis + rank if axis < 0 else axis
    pos = torch.arange(depth).reshape([-1 if i == axis else 1 for i in range(rank)])
    return torch.where(indices.long().unsqueeze(axis) == pos, on_value, off_value)


def _tile_type(ctx):
    shape = ctx.shape("x")
    if vector_len(ctx, "reps") != len(shape):
        raise ctx.error(f"input 'reps' must have rank(x) = {len(shape)} entries, got {ctx.type('reps')}")
    reps = int_values(ctx, "reps")
    if reps is None:
        return TensorType(ctx.dtype("x"), fresh_dims(len(shape)))
    if min(reps, default=1) < 1:
        raise ctx.error(f"input 'reps' {reps} must be positive")
    return TensorType(ctx.dtype("x"), tuple(dim_mul(d, r) for d, r in zip(shape, reps)))


@mil_op("tile", domains={"T": T15}, inputs=[In("x", "T"), In("reps", I32)], infer=_tile_type)
def tile(x, reps):
    """Repeat x reps[i] times along each dim i."""
    return x.repeat([int(r) for r in reps.reshape(-1).tolist()]) if x.dim() else x


# -- padding -------------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "replicate")


def _pad_type(ctx):
    shape = list(ctx.shape("x"))
    n = vector_len(ctx, "pad")
    mode = ctx.param("mode")
    if mode not in _PAD_MODES:
        raise ctx.error(f"input 'mode' must be one of {list(_PAD_MODES)}, got {mode!r}")
    pads = int_values(ctx, "pad")
    if n % 2 or n > 2 * len(shape) or (pads is None and n != 2 * len(shape)):
        raise ctx.error(f"input 'pad' has {n} entries; it needs an even number up to 2 * rank(x) = "
                        f"{2 * len(shape)} (exactly that many when it is not a constant)")
    if pads is None:
        return TensorType(ctx.dtype("x"), fresh_dims(len(shape)))
    if min(pads, default=0) < 0:
        raise ctx.error(f"input 'pad' {pads} must not be negative")
    first = len(shape) - n // 2
    for k in range(n // 2):
        d, before, after = shape[first + k], pads[2 * k], pads[2 * k + 1]
        limit = d - 1 if mode == "reflect" else d
        if mode != "constant" and isinstance(d, int) and max(before, after) > limit:
            raise ctx.error(f"{mode} padding {pads[2 * k:2 * k + 2]} exceeds {limit} for dim {first + k} of size {d}")
        shape[first + k] = dim_add(d, before + after)
    return TensorType(ctx.dtype("x"), tuple(shape))


@mil_op("pad", domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("pad", I32),
                In("mode", STR, const=True, optional=True, param=True, default="constant"),
                In("constant_val", "T", const=True, optional=True, param=True, default=0.0)],
        infer=_pad_type)
def pad(x, pad, mode, constant_val):
    """Pad the last len(pad)/2 dims: pad[2k] elements before and pad[2k+1] after each. mode
    "constant" fills constant_val, "reflect" mirrors without repeating the edge, "replicate" repeats it."""
    p = [int(v) for v in pad.reshape(-1).tolist()]
    k = len(p) // 2
    first = x.dim() - k
    if mode == "constant":
        flat = [v for i in reversed(range(k)) for v in (p[2 * i], p[2 * i + 1])]
        return torch.nn.functional.pad(x, flat, value=constant_val)
    for i in range(k):
        dim, d = first + i, x.shape[first + i]
        pos = torch.arange(-p[2 * i], d + p[2 * i + 1])
        if mode == "replicate":
            pos = pos.clamp(0, d - 1)
        else:
            pos = pos.abs()
            pos = torch.where(pos > d - 1, 2 * (d - 1) - pos, pos)
        x = x.index_select(dim, pos)
    return x


# -- shape queries and flattening ----------------------------------------------------------------

def _flatten2d_type(ctx):
    shape = ctx.shape("x")
    axis = int_param(ctx, "axis")
    if not -len(shape) <= axis <= len(shape):
        raise ctx.error(f"input 'axis': {axis} is out of range for rank {len(shape)}")
    axis = axis + len(shape) if axis < 0 else axis
    return TensorType(ctx.dtype("x"), (dim_prod(shape[:axis]), dim_prod(shape[axis:])))


@mil_op("flatten2d", domains={"T": T15},
        inputs=[In("x", "T"), In("axis", I32, const=True, optional=True, param=True, default=1)],
        infer=_flatten2d_type)
def flatten2d(x, axis):
    """Reshape to 2-D: [prod(shape[:axis]), prod(shape[axis:])]; a negative axis counts from the end."""
    axis = axis + x.dim() if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@mil_op("shape", domains={"T": T15}, inputs=[In("x", "T")],
        infer=lambda ctx: TensorType(dt.int32, (ctx.rank("x"),)))
def shape(x):
    """The run-time shape of x as a 1-D int32 tensor."""
    return torch.tensor(list(x.shape), dtype=torch.int32)


# -- joining and splitting -----------------------------------------------------------------------

def _same_rank(ctx) -> list:
    types = ctx.types("values")
    if not types:
        raise ctx.error("input 'values' is empty")
    if len({t.rank for t in types}) != 1:
        raise ctx.error(f"input 'values' mixes ranks: {[str(t) for t in types]}")
    return types


def _concat_type(ctx):
    types = _same_rank(ctx)
    dtype, rank = types[0].dtype, types[0].rank
    interleave = bool(ctx.param("interleave"))
    axis = int_param(ctx, "axis")
    if rank == 0:
        return TensorType(dtype, (len(types),))
    axis = axis_of(ctx, "axis", axis, rank)
    shape = list(types[0].shape)
    for t in types[1:]:
        for i, (a, b) in enumerate(zip(shape, t.shape)):
            if isinstance(a, int) and isinstance(b, int) and a != b and (i != axis or interleave):
                raise ctx.error(f"input 'values' shapes {[list(t.shape) for t in types]} differ on dim {i}")
    parts = [t.shape[axis] for t in types]
    if all(isinstance(d, int) for d in parts):
        shape[axis] = sum(parts)
    elif len(parts) > 1:
        shape[axis] = Symbol.fresh()
    return TensorType(dtype, tuple(shape))


@mil_op("concat", domains={"T": T15},
        inputs=[In("values", "T", variadic=True), In("axis", I32, const=True, param=True),
                In("interleave", BOOL, const=True, optional=True, param=True, default=False)],
        infer=_concat_type)
def concat(values, axis, interleave):
    """Join tensors along `axis` (scalars join into a 1-D tensor). interleave: take one slice from
    each input in turn instead (inputs must then have equal shapes)."""
    if values[0].dim() == 0:
        return torch.stack(values)
    axis %= values[0].dim()
    if interleave:
        return torch.stack(values, axis + 1).flatten(axis, axis + 1)
    return torch.cat(values, axis)


def _stack_type(ctx):
    types = _same_rank(ctx)
    shape = list(types[0].shape)
    for t in types[1:]:
        for i, d in enumerate(t.shape):
            if isinstance(d, int) and isinstance(shape[i], int) and d != shape[i]:
                raise ctx.error(f"input 'values' must share one shape, got {[list(t.shape) for t in types]}")
            if isinstance(d, int):
                shape[i] = d
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(shape) + 1)
    shape.insert(axis, len(types))
    return TensorType(types[0].dtype, tuple(shape))


@mil_op("stack", domains={"T": T15},
        inputs=[In("values", "T", variadic=True), In("axis", I32, const=True, param=True)],
        infer=_stack_type)
def stack(values, axis):
    """Join equally shaped tensors along a new dim inserted at `axis`."""
    return torch.stack(values, axis % (values[0].dim() + 1))


def _split_type(ctx):
    shape = list(ctx.shape("x"))
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(shape))
    d = shape[axis]
    if not ctx.has("num_splits") and not ctx.has("split_sizes"):
        raise ctx.error("one of the inputs 'num_splits' and 'split_sizes' is required")
    n = int_param(ctx, "num_splits") if ctx.has("num_splits") else None
    sizes = [int(v) for v in np.asarray(ctx.value("split_sizes")).reshape(-1)] if ctx.has("split_sizes") else None
    if sizes is None:
        if n < 1:
            raise ctx.error(f"input 'num_splits' must be positive, got {n}")
        if isinstance(d, int) and d % n:
            raise ctx.error(f"input 'num_splits' {n} does not divide dim {axis} of x ({d})")
        size = d // n if isinstance(d, int) else d if n == 1 else Symbol.fresh()
        sizes = [size] * n
    else:
        if n is not None and n != len(sizes):
            raise ctx.error(f"input 'num_splits' {n} disagrees with split_sizes {sizes}")
        if min(sizes, default=0) < 0 or (isinstance(d, int) and sum(sizes) != d):
            raise ctx.error(f"input 'split_sizes' {sizes} must be non-negative and add up to {d}")
    return [TensorType(ctx.dtype("x"), tuple(shape[:axis] + [s] + shape[axis + 1:])) for s in sizes]


@mil_op("split", domains={"T": T15},
        inputs=[In("x", "T"), In("num_splits", I32, const=True, optional=True, param=True),
                In("split_sizes", I32, const=True, optional=True, param=True),
                In("axis", I32, const=True, param=True)],
        infer=_split_type)
def split(x, num_splits, split_sizes, axis):
    """Cut x along `axis` into pieces of lengths split_sizes, or into num_splits equal pieces."""
    axis %= x.dim()
    sizes = [x.shape[axis] // num_splits] * num_splits if split_sizes is None else as_list(split_sizes)
    return tuple(torch.split(x, sizes, axis))


@mil_op("identity", inputs=[In("x", ANY)], infer=same_as("x"))
def identity(x):
    """Its input, unchanged (used to rename a value)."""
    return x
