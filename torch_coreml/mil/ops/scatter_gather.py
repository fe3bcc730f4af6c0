"""MIL gather and scatter ops: gather, gather_along_axis, gather_nd, scatter, scatter_along_axis and
scatter_nd, in their iOS15, iOS16 (wider index types, batch_dims) and iOS17 (validate_indices) forms.

Negative indices count from the end of their dim, as iOS15/16 define; iOS17 calls them out of range
and leaves the result undefined, so counting from the end is one valid choice there too. With
validate_indices, an out-of-range index is an error at compile time (const indices) or run time.

Scatter modes: "update" overwrites (with repeated indices the last one wins), "add", "sub", "mul",
"div", "max" and "min" combine each update with the current value; repeated indices accumulate.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .spec import In, mil_op
from .tensor_transformation import BOOL, I32, STR, axis_of, int_param

_T15 = (dt.fp16, dt.fp32, dt.int32)
_T17 = (dt.fp16, dt.fp32, dt.int32, dt.int16, dt.uint16, dt.int8, dt.uint8)
_I16 = (dt.int32, dt.uint16, dt.int16)
_I17 = (dt.int32, dt.int16, dt.uint16, dt.int8, dt.uint8)
_MODES = ("update", "add", "sub", "mul", "div", "max", "min")
_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _optional(name, types, default):
    return In(name, types, const=True, optional=True, param=True, default=default)


_AXIS = _optional("axis", I32, 0)
_BATCH_DIMS = _optional("batch_dims", I32, 0)
_VALIDATE = _optional("validate_indices", BOOL, False)
_MODE = _optional("mode", STR, "add")


# -- checks shared by type inference ---------------------------------------------------------------

def _compatible(a, b) -> bool:
    return len(a) == len(b) and all(not (isinstance(x, int) and isinstance(y, int)) or x == y
                                    for x, y in zip(a, b))


def _check_bounds(ctx, bounds) -> None:
    """With validate_indices and const indices, every index must lie in [0, bound) of its dim.
    `bounds` is one dim size, or a list of them for the last axis of gather_nd/scatter_nd indices."""
    values = ctx.value("indices")
    if not ctx.param("validate_indices", False) or values is None:
        return
    limit = np.asarray(bounds, dtype=object)
    if any(not isinstance(b, int) for b in limit.reshape(-1)):
        return
    values = values.astype(np.int64)
    if values.size and ((values < 0) | (values >= limit.astype(np.int64))).any():
        raise ctx.error(f"input 'indices' holds values outside [0, {bounds}) and validate_indices is set")


def _check_mode(ctx) -> None:
    if ctx.param("mode") not in _MODES:
        raise ctx.error(f"input 'mode' must be one of {list(_MODES)}, got {ctx.param('mode')!r}")


def _index_depth(ctx, x_name: str, batch_dims: int) -> int:
    shape = ctx.shape("indices")
    if not shape or not isinstance(shape[-1], int):
        raise ctx.error(f"input 'indices' needs a last dim of known size, got {ctx.type('indices')}")
    if shape[-1] + batch_dims > ctx.rank(x_name):
        raise ctx.error(f"input 'indices': index depth {shape[-1]} plus batch_dims {batch_dims} exceeds "
                        f"the rank of {x_name!r} ({ctx.rank(x_name)})")
    return shape[-1]


# -- kernels' shared pieces ----------------------------------------------------------------------

def _indices(indices, size, validate: bool, op: str):
    """int64 indices with negative entries counted from the end of a dim of length `size`."""
    idx = indices.long()
    if validate and bool(((idx < 0) | (idx >= size)).any()):
        raise IndexError(f"{op}: an index is outside [0, {size}) and validate_indices is set")
    return torch.where(idx < 0, idx + size, idx)


def _linear_indices(indices, dims, validate: bool, op: str):
    """Row-major positions in a block of shape `dims` for index vectors on the last axis of `indices`."""
    size = torch.tensor(list(dims), dtype=torch.long)
    idx = indices.long()
    if validate and bool(((idx < 0) | (idx >= size)).any()):
        raise IndexError(f"{op}: an index is outside [0, {list(dims)}) and validate_indices is set")
    idx = torch.where(idx < 0, idx + size, idx)
    strides = [math.prod(dims[i + 1:]) for i in range(len(dims))]
    return (idx * torch.tensor(strides, dtype=torch.long)).sum(-1)


def _scatter_along(data, dim, index, src, mode):
    """Combine src into data at data[..., index[...], ...] along `dim` (index and src share a shape)."""
    if mode == "update":
        return data.scatter(dim, index, src)
    if mode == "sub":
        return data.scatter_reduce(dim, index, -src, "sum")
    if mode == "div":
        # Dividing by each update in turn is dividing by their product.
        return data / torch.ones_like(data).scatter_reduce(dim, index, src, "prod")
    return data.scatter_reduce(dim, index, src, _REDUCE[mode])


# -- gather --------------------------------------------------------------------------------------

def _gather_type(ctx):
    xs, ishape = ctx.shape("x"), ctx.shape("indices")
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(xs))
    bd = ctx.param("batch_dims", 0)
    if not 0 <= bd <= min(axis, len(ishape)):
        raise ctx.error(f"input 'batch_dims' ({bd}) must lie in [0, min(axis={axis}, rank(indices)={len(ishape)})]")
    _check_bounds(ctx, xs[axis])
    return TensorType(ctx.dtype("x"), xs[:axis] + ishape[bd:] + xs[axis + 1:])


@mil_op("gather", since=Target.iOS17, domains={"T": _T17, "I": _I17},
        inputs=[In("x", "T"), In("indices", "I"), _AXIS, _BATCH_DIMS, _VALIDATE], infer=_gather_type)
@mil_op("gather", since=Target.iOS16, domains={"T": _T15, "I": _I16},
        inputs=[In("x", "T"), In("indices", "I"), _AXIS, _BATCH_DIMS], infer=_gather_type)
@mil_op("gather", domains={"T": _T15}, inputs=[In("x", "T"), In("indices", I32), _AXIS], infer=_gather_type)
def gather(x, indices, axis, batch_dims=0, validate_indices=False):
    """Take slices of x along `axis` at `indices`; the indices' dims replace that axis. The first
    batch_dims dims (iOS16+) are shared: each batch entry of x is gathered with its own indices."""
    axis %= x.dim()
    d = x.shape[axis]
    idx = _indices(indices, d, validate_indices, "gather")
    batch, pre, post = x.shape[:batch_dims], x.shape[batch_dims:axis], x.shape[axis + 1:]
    nb, n = math.prod(batch), math.prod(idx.shape[batch_dims:])
    xb = x.reshape(nb, math.prod(pre), d, math.prod(post))
    ib = idx.reshape(nb, 1, n, 1).expand(nb, xb.shape[1], n, xb.shape[3])
    # A tuple, not *args: a 0-d result (scalar index into a vector) has an empty shape.
    return torch.gather(xb, 2, ib).reshape((*batch, *pre, *idx.shape[batch_dims:], *post))


def _along_axis_shapes(ctx, x_name: str):
    xs, ishape = ctx.shape(x_name), ctx.shape("indices")
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(xs))
    if len(ishape) != len(xs):
        raise ctx.error(f"input 'indices' must have the rank of {x_name!r}: "
                        f"{ctx.type('indices')} vs {ctx.type(x_name)}")
    for i, (a, b) in enumerate(zip(xs, ishape)):
        if i != axis and isinstance(a, int) and isinstance(b, int) and a != b:
            raise ctx.error(f"input 'indices' {list(ishape)} must match {x_name!r} {list(xs)} off axis {axis}")
    _check_bounds(ctx, xs[axis])
    return ishape


def _gather_along_axis_type(ctx):
    return TensorType(ctx.dtype("x"), _along_axis_shapes(ctx, "x"))


@mil_op("gather_along_axis", since=Target.iOS17, domains={"T": _T17, "I": _I17},
        inputs=[In("x", "T"), In("indices", "I"), _AXIS, _VALIDATE], infer=_gather_along_axis_type)
@mil_op("gather_along_axis", since=Target.iOS16, domains={"T": _T15, "I": _I16},
        inputs=[In("x", "T"), In("indices", "I"), _AXIS], infer=_gather_along_axis_type)
@mil_op("gather_along_axis", domains={"T": _T15}, inputs=[In("x", "T"), In("indices", I32), _AXIS],
        infer=_gather_along_axis_type)
def gather_along_axis(x, indices, axis, validate_indices=False):
    """out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis` (torch.gather); the output
    has the indices' shape."""
    axis %= x.dim()
    return torch.gather(x, axis, _indices(indices, x.shape[axis], validate_indices, "gather_along_axis"))


def _gather_nd_type(ctx):
    bd = ctx.param("batch_dims", 0)
    ishape, xs = ctx.shape("indices"), ctx.shape("x")
    if not 0 <= bd < len(ishape):
        raise ctx.error(f"input 'batch_dims' ({bd}) must lie in [0, rank(indices) - 1]")
    depth = _index_depth(ctx, "x", bd)
    _check_bounds(ctx, list(xs[bd:bd + depth]))
    return TensorType(ctx.dtype("x"), ishape[:-1] + xs[bd + depth:])


@mil_op("gather_nd", since=Target.iOS17, domains={"T": _T17, "I": _I17},
        inputs=[In("x", "T"), In("indices", "I"), _BATCH_DIMS, _VALIDATE], infer=_gather_nd_type)
@mil_op("gather_nd", since=Target.iOS16, domains={"T": _T15, "I": _I16},
        inputs=[In("x", "T"), In("indices", "I"), _BATCH_DIMS], infer=_gather_nd_type)
@mil_op("gather_nd", domains={"T": _T15}, inputs=[In("x", "T"), In("indices", I32)], infer=_gather_nd_type)
def gather_nd(x, indices, batch_dims=0, validate_indices=False):
    """Each vector on the last axis of `indices` addresses a slice of x by its leading coordinates;
    out = x[indices[i0, ..., ik]] over all leading index positions. The first batch_dims dims
    (iOS16+) are shared between x and indices."""
    depth = indices.shape[-1]
    batch, lead, rest = x.shape[:batch_dims], x.shape[batch_dims:batch_dims + depth], x.shape[batch_dims + depth:]
    nb, n = math.prod(batch), math.prod(indices.shape[batch_dims:-1])
    lin = _linear_indices(indices, lead, validate_indices, "gather_nd").reshape(nb, n, 1)
    xf = x.reshape(nb, math.prod(lead), math.prod(rest))
    out = torch.gather(xf, 1, lin.expand(nb, n, xf.shape[2]))
    return out.reshape(*indices.shape[:-1], *rest)


# -- scatter -------------------------------------------------------------------------------------

def _scatter_type(ctx):
    _check_mode(ctx)
    ds = ctx.shape("data")
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(ds))
    want = ds[:axis] + ctx.shape("indices") + ds[axis + 1:]
    if not _compatible(ctx.shape("updates"), want):
        raise ctx.error(f"input 'updates' has shape {list(ctx.shape('updates'))}, expected {list(want)}")
    _check_bounds(ctx, ds[axis])
    return ctx.type("data")


_SCATTER15 = [In("data", "T"), In("indices", I32), In("updates", "T"), _AXIS, _MODE]


@mil_op("scatter", since=Target.iOS17, domains={"T": _T15}, inputs=_SCATTER15 + [_VALIDATE], infer=_scatter_type)
@mil_op("scatter", domains={"T": _T15}, inputs=_SCATTER15, infer=_scatter_type)
def scatter(data, indices, updates, axis, mode, validate_indices=False):
    """A copy of data where the slices along `axis` at `indices` are combined with `updates` by
    `mode` (see the module doc). updates has data's shape with that axis replaced by indices' dims."""
    axis %= data.dim()
    idx = _indices(indices, data.shape[axis], validate_indices, "scatter").reshape(-1)
    n = idx.numel()
    post = data.shape[axis + 1:]
    src = updates.reshape(*data.shape[:axis], n, *post)
    index = idx.reshape([1] * axis + [n] + [1] * len(post)).expand(src.shape)
    return _scatter_along(data, axis, index, src, mode)


def _scatter_along_axis_type(ctx):
    _check_mode(ctx)
    ishape = _along_axis_shapes(ctx, "data")
    if not _compatible(ctx.shape("updates"), ishape):
        raise ctx.error(f"input 'updates' {list(ctx.shape('updates'))} must have the shape of 'indices' {list(ishape)}")
    return ctx.type("data")


@mil_op("scatter_along_axis", since=Target.iOS17, domains={"T": _T15}, inputs=_SCATTER15 + [_VALIDATE],
        infer=_scatter_along_axis_type)
@mil_op("scatter_along_axis", domains={"T": _T15}, inputs=_SCATTER15, infer=_scatter_along_axis_type)
def scatter_along_axis(data, indices, updates, axis, mode, validate_indices=False):
    """The inverse access pattern of gather_along_axis: updates[..., i, ...] is combined by `mode`
    into data[..., indices[..., i, ...], ...] along `axis`."""
    axis %= data.dim()
    index = _indices(indices, data.shape[axis], validate_indices, "scatter_along_axis")
    return _scatter_along(data, axis, index, updates, mode)


def _scatter_nd_type(ctx):
    _check_mode(ctx)
    depth = _index_depth(ctx, "data", 0)
    ds = ctx.shape("data")
    want = ctx.shape("indices")[:-1] + ds[depth:]
    if not _compatible(ctx.shape("updates"), want):
        raise ctx.error(f"input 'updates' has shape {list(ctx.shape('updates'))}, expected {list(want)}")
    _check_bounds(ctx, list(ds[:depth]))
    return ctx.type("data")


_SCATTER_ND15 = [In("data", "T"), In("indices", I32), In("updates", "T"), _MODE]


@mil_op("scatter_nd", since=Target.iOS17, domains={"T": _T15}, inputs=_SCATTER_ND15 + [_VALIDATE],
        infer=_scatter_nd_type)
@mil_op("scatter_nd", domains={"T": _T15}, inputs=_SCATTER_ND15, infer=_scatter_nd_type)
def scatter_nd(data, indices, updates, mode, validate_indices=False):
    """The inverse access pattern of gather_nd: each index vector on the last axis of `indices`
    addresses a slice of data, which is combined by `mode` with the matching slice of updates."""
    depth = indices.shape[-1]
    lead, rest = data.shape[:depth], data.shape[depth:]
    lin = _linear_indices(indices, lead, validate_indices, "scatter_nd").reshape(-1, 1)
    flat = data.reshape(math.prod(lead), math.prod(rest))
    src = updates.reshape(lin.shape[0], flat.shape[1])
    return _scatter_along(flat, 0, lin.expand(src.shape), src, mode).reshape(data.shape)
