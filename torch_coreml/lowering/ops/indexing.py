"""Indexing: index.Tensor, index_select, gather, the scatters, index_put, slice/select_scatter and
masked_fill.

Integer index tensors arrive as int32. Negative indices count from the end in torch; iOS15/16 MIL gathers
do the same, iOS17 calls them out of range, so from iOS17 on a non-constant index is wrapped with `mod`
first. A boolean mask indexes like the integer coordinates of its true elements (`non_zero`, a result of
run-time length); assigning through a mask needs no such length: a running count of the mask picks
each element's value, and a `select` writes it. MIL scatters have no bool domain, so bool tensors are
refused there.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ...mil.targets import Target
from ...mil.types import broadcast_shapes
from ..registry import lowering
from .shape import INT32_MAX, axis_of, refuse_empty_result, select_axis, slice_axis

aten = torch.ops.aten


def dim_size(ctx, x: Var, axis: int) -> Var:
    """x.shape[axis] as an int32 scalar (a const when static)."""
    d = x.shape[axis]
    if isinstance(d, int):
        return ctx.const(np.int32(d), dt.int32)
    return select_axis(ctx, ctx.b.op("shape", x=x), 0, axis)


def wrap_index(ctx, index: Var, x: Var, axis: int) -> Var:
    """Negative indices → counted from the end of x's dim `axis` (needed from iOS17 on)."""
    if index.dtype is dt.bool_ or index.dtype.is_float:
        raise ctx.unsupported(f"index tensors of {index.dtype} are masks or invalid; only integer indices are supported")
    if ctx.target < Target.iOS17 or (index.is_const and (np.asarray(index.value) >= 0).all()):
        return index
    return ctx.b.op("mod", x=index, y=dim_size(ctx, x, axis))


def gather_op(ctx, op: str, x: Var, **inputs) -> Var:
    """A MIL gather; they have no bool domain, so bools are gathered as int32."""
    if x.dtype is dt.bool_:
        return ctx.cast(ctx.b.op(op, x=ctx.cast(x, dt.int32), **inputs), dt.bool_)
    return ctx.b.op(op, x=x, **inputs)


def broadcast_indices(ctx, indices: list[Var]) -> list[Var]:
    """Index tensors broadcast to one shape (adding int32 zeros of that shape)."""
    shapes = [tuple(i.shape) for i in indices]
    if len(set(shapes)) == 1:
        return indices
    if not all(isinstance(d, int) for s in shapes for d in s):
        raise ctx.unsupported("index tensors of different run-time shapes")
    target = tuple(broadcast_shapes(*shapes))
    zeros = ctx.const(np.zeros(target, np.int32), dt.int32)
    return [i if tuple(i.shape) == target else ctx.b.op("add", x=i, y=zeros) for i in indices]


def _index_entries(ctx, indices) -> tuple[list[int], list[Var]]:
    entries = list(indices)
    positions = [i for i, t in enumerate(entries) if t is not None]
    if not positions:
        raise ctx.unsupported("an index without index tensors")
    return positions, [entries[p] for p in positions]


def _transpose(ctx, x: Var, perm: list[int]) -> Var:
    return x if perm == list(range(len(perm))) else ctx.b.op("transpose", x=x, perm=perm)


def _adjacent(positions: list[int]) -> bool:
    return positions == list(range(positions[0], positions[-1] + 1))


@lowering(aten.index.Tensor)
def index(ctx, self, indices):
    """index.Tensor(Tensor self, Tensor?[] indices) -> Tensor"""
    refuse_empty_result(ctx)
    positions, tensors = _index_entries(ctx, _mask_coordinates(ctx, indices))
    idx = [wrap_index(ctx, t, self, p) for p, t in zip(positions, tensors)]
    if len(idx) == 1:
        return gather_op(ctx, "gather", self, indices=idx[0], axis=positions[0])
    idx = broadcast_indices(ctx, idx)
    nb = idx[0].rank
    coords = ctx.b.op("stack", values=idx, axis=nb)
    rest = [i for i in range(self.rank) if i not in positions]
    # gather_nd indexes leading dims: bring the indexed dims to the front, in order.
    out = gather_op(ctx, "gather_nd", _transpose(ctx, self, positions + rest), indices=coords)
    if _adjacent(positions) and positions[0] > 0:
        # torch keeps adjacent indexed dims in place: move the index dims back behind the leading dims.
        p0 = positions[0]
        out = _transpose(ctx, out, list(range(nb, nb + p0)) + list(range(nb)) + list(range(nb + p0, out.rank)))
    return out


@lowering(aten.index_select.default)
def index_select(ctx, self, dim, index):
    """index_select(Tensor self, int dim, Tensor index) -> Tensor"""
    refuse_empty_result(ctx)
    if self.rank == 0:
        return self  # a scalar has one element, so the (in-range) index can only pick it
    axis = axis_of(dim, self.rank)
    if index.rank == 0:
        index = ctx.b.op("expand_dims", x=index, axes=[0])
    return gather_op(ctx, "gather", self, indices=wrap_index(ctx, index, self, axis), axis=axis)


def crop_to(ctx, x: Var, shape, skip_axis: int) -> Var:
    """x cropped to `shape` on every axis but `skip_axis` (torch's gather/scatter index may be smaller)."""
    for i, (d, want) in enumerate(zip(x.shape, shape)):
        if i == skip_axis or d is want or d == want:
            continue
        if not isinstance(want, int):
            raise ctx.unsupported("an index smaller than the tensor on a dim of run-time size")
        x = slice_axis(ctx, x, i, 0, want)
    return x


@lowering(aten.gather.default)
def gather(ctx, self, dim, index, sparse_grad=False):
    """gather(Tensor self, int dim, Tensor index, *, bool sparse_grad=False) -> Tensor"""
    refuse_empty_result(ctx)
    if self.rank == 0:
        raise ctx.unsupported("gather from a scalar")
    axis = axis_of(dim, self.rank)
    x = crop_to(ctx, self, index.shape, axis)
    return gather_op(ctx, "gather_along_axis", x, indices=wrap_index(ctx, index, self, axis), axis=axis)


# -- scatters ------------------------------------------------------------------------------------

def scatter_into(ctx, data: Var, axis: int, index: Var, src: Var, mode: str) -> Var:
    """torch.scatter with MIL `mode`: scatter_along_axis when the index spans data's other dims,
    else scatter_nd with explicit coordinates (the index may be smaller than data there)."""
    if data.dtype is dt.bool_:
        raise ctx.unsupported("MIL scatters have no bool domain")
    if data.rank == 0 or index.rank == 0:
        raise ctx.unsupported("scatter into or with a scalar")
    src = crop_to(ctx, ctx.cast(src, data.dtype), index.shape, -1)
    idx = wrap_index(ctx, index, data, axis)
    spans = all(i == axis or a is b or a == b for i, (a, b) in enumerate(zip(data.shape, index.shape)))
    if spans:
        return ctx.b.op("scatter_along_axis", data=data, indices=idx, updates=src, axis=axis, mode=mode)
    if not all(isinstance(d, int) for d in index.shape):
        raise ctx.unsupported("an index smaller than data on a run-time sized dim")
    grid = np.indices(tuple(index.shape), dtype=np.int32)
    coords = [idx if i == axis else ctx.const(grid[i], dt.int32) for i in range(data.rank)]
    coords = ctx.b.op("stack", values=coords, axis=index.rank)
    return ctx.b.op("scatter_nd", data=data, indices=coords, updates=src, mode=mode)


def filled_like(ctx, ref: Var, value, dtype) -> Var:
    """A tensor of ref's shape holding `value` in `dtype`."""
    (v,) = ctx.promote(value, dtype=dtype)
    static = all(isinstance(d, int) for d in ref.shape)
    if static and int(np.prod(ref.shape)) <= 64:  # small: a const; larger: a fill the package need not store
        return ctx.const(np.full(tuple(ref.shape), v.value, dtype.numpy), dtype)
    return ctx.b.op("fill", shape=list(ref.shape) if static else ctx.b.op("shape", x=ref), value=v)


_REDUCE_MODES = {"sum": "add", "add": "add", "prod": "mul", "multiply": "mul", "amax": "max", "amin": "min"}


def _mode(ctx, reduce: str) -> str:
    if reduce not in _REDUCE_MODES:
        raise ctx.unsupported(f"scatter reduction {reduce!r} has no MIL scatter mode")
    return _REDUCE_MODES[reduce]


@lowering(aten.scatter.src, aten.scatter.value)
def scatter(ctx, self, dim, index, src=None, value=None):
    """scatter.src(Tensor self, int dim, Tensor index, Tensor src) -> Tensor"""
    src = src if src is not None else filled_like(ctx, index, value, self.dtype)
    return scatter_into(ctx, self, axis_of(dim, self.rank), index, src, "update")


@lowering(aten.scatter.reduce, aten.scatter.value_reduce)
def scatter_reduce_legacy(ctx, self, dim, index, src=None, value=None, reduce="add"):
    """scatter.reduce(Tensor self, int dim, Tensor index, Tensor src, *, str reduce) -> Tensor"""
    src = src if src is not None else filled_like(ctx, index, value, self.dtype)
    return scatter_into(ctx, self, axis_of(dim, self.rank), index, src, _mode(ctx, reduce))


@lowering(aten.scatter_add.default)
def scatter_add(ctx, self, dim, index, src):
    """scatter_add(Tensor self, int dim, Tensor index, Tensor src) -> Tensor"""
    return scatter_into(ctx, self, axis_of(dim, self.rank), index, src, "add")


def _identity_of(mode: str, dtype):
    """The value a reduction starts from when the original element is excluded."""
    if mode in ("add", "sub"):
        return 0
    if mode == "mul":
        return 1
    big = float("inf") if dtype.is_float else np.iinfo(np.int32).max
    return -big if mode == "max" else big


def scatter_mean(ctx, self: Var, updates: Var, include_self: bool, scatter) -> Var:
    """torch's "mean" reduction: (self, if included, + the sum of updates) / (their count); untouched
    elements keep self. Integers divide with floor, as torch does. `scatter(base, values, mode)`."""
    ones = filled_like(ctx, updates, 1, self.dtype)
    count = scatter(filled_like(ctx, self, 0, self.dtype), ones, "add")
    base = self if include_self else scatter(self, filled_like(ctx, updates, 0, self.dtype), "update")
    total = scatter(base, ctx.cast(updates, self.dtype), "add")
    one = ctx.const(np.asarray(1, self.dtype.numpy), self.dtype)
    # Counting self once more; an untouched element (count 0) is divided by 1 and so kept.
    count = ctx.b.op("add" if include_self else "maximum", x=count, y=one)
    return ctx.b.op("real_div" if self.dtype.is_float else "floor_div", x=total, y=count)


@lowering(aten.scatter_reduce.two)
def scatter_reduce(ctx, self, dim, index, src, reduce, include_self=True):
    """scatter_reduce.two(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor"""
    axis = axis_of(dim, self.rank)
    if reduce == "mean":
        return scatter_mean(ctx, self, crop_to(ctx, src, index.shape, -1), include_self,
                            lambda base, values, mode: scatter_into(ctx, base, axis, index, values, mode))
    mode = _mode(ctx, reduce)
    data = self
    if not include_self:
        # Reset the targeted elements to the reduction's identity, then reduce onto them.
        start = filled_like(ctx, index, _identity_of(mode, self.dtype), self.dtype)
        data = scatter_into(ctx, data, axis, index, start, "update")
    return scatter_into(ctx, data, axis, index, src, mode)


@lowering(aten.index_reduce.default)
def index_reduce(ctx, self, dim, index, source, reduce, include_self=True):
    """index_reduce(Tensor self, int dim, Tensor index, Tensor source, str reduce, *, bool include_self=True) -> Tensor"""
    if self.dtype is dt.bool_:
        raise ctx.unsupported("MIL scatters have no bool domain")
    if self.rank == 0:  # MIL scatters need rank >= 1: reduce into a one-element vector
        vector = [ctx.b.op("reshape", x=v, shape=[1]) for v in (self, index, source)]
        out = index_reduce(ctx, vector[0], 0, vector[1], vector[2], reduce, include_self)
        return ctx.b.op("reshape", x=out, shape=np.zeros(0, np.int32))
    axis = axis_of(dim, self.rank)
    index = wrap_index(ctx, index, self, axis)
    source = ctx.cast(source, self.dtype)
    if reduce == "mean":
        return scatter_mean(ctx, self, source, include_self, lambda base, values, mode: ctx.b.op(
            "scatter", data=base, indices=index, updates=values, axis=axis, mode=mode))
    mode = _mode(ctx, reduce)
    data = self
    if not include_self:
        start = filled_like(ctx, source, _identity_of(mode, self.dtype), self.dtype)
        data = ctx.b.op("scatter", data=data, indices=index, updates=start, axis=axis, mode="update")
    return ctx.b.op("scatter", data=data, indices=index, updates=source, axis=axis, mode=mode)


def _index_scatter(ctx, self, dim, index, updates, mode: str) -> Var:
    """MIL `scatter`: slices of self along dim at the 1-D `index` combined with updates by mode."""
    if self.dtype is dt.bool_ or self.rank == 0:
        raise ctx.unsupported("MIL scatters have no bool domain and need a tensor of rank >= 1")
    axis = axis_of(dim, self.rank)
    index = ctx.b.op("reshape", x=index, shape=[1]) if index.rank == 0 else index
    return ctx.b.op("scatter", data=self, indices=wrap_index(ctx, index, self, axis),
                    updates=ctx.cast(updates, self.dtype), axis=axis, mode=mode)


@lowering(aten.index_add.default)
def index_add(ctx, self, dim, index, source, alpha=1):
    """index_add(Tensor self, int dim, Tensor index, Tensor source, *, Scalar alpha=1) -> Tensor"""
    if alpha != 1:
        source = ctx.b.op("mul", x=ctx.cast(source, self.dtype), y=ctx.promote(alpha, dtype=self.dtype)[0])
    if source.rank < self.rank:
        source = ctx.b.op("expand_dims", x=source, axes=[axis_of(dim, self.rank)])
    return _index_scatter(ctx, self, dim, index, source, "add")


@lowering(aten.index_copy.default)
def index_copy(ctx, self, dim, index, source):
    """index_copy(Tensor self, int dim, Tensor index, Tensor source) -> Tensor"""
    if source.rank < self.rank:
        source = ctx.b.op("expand_dims", x=source, axes=[axis_of(dim, self.rank)])
    return _index_scatter(ctx, self, dim, index, source, "update")


@lowering(aten.as_strided_scatter.default)
def as_strided_scatter(ctx, self, src, size, stride, storage_offset=None):
    """as_strided_scatter(Tensor self, Tensor src, SymInt[] size, SymInt[] stride, SymInt? storage_offset=None) -> Tensor"""
    # As for as_strided: only a contiguous self's storage is its row-major elements.
    meta = ctx.node.args[0].meta.get("val") if ctx.node is not None and ctx.node.args else None
    if not isinstance(meta, torch.Tensor) or not all(isinstance(v, int) for v in [*size, *stride, *meta.shape]) \
            or not meta.is_contiguous() or meta.storage_offset() != 0 or self.dtype is dt.bool_:
        raise ctx.unsupported("as_strided_scatter needs a contiguous non-bool tensor, static sizes and strides")
    grid = np.indices(tuple(size), dtype=np.int64)
    positions = np.asarray((storage_offset or 0) + sum(g * s for g, s in zip(grid, stride))).reshape(-1)
    flat = ctx.b.op("reshape", x=self, shape=[-1])
    updates = ctx.b.op("reshape", x=ctx.cast(src, self.dtype), shape=[-1])
    out = ctx.b.op("scatter", data=flat, indices=ctx.const(positions.astype(np.int32), dt.int32),
                   updates=updates, axis=0, mode="update")
    return ctx.b.op("reshape", x=out, shape=list(meta.shape))


@lowering(aten.put.default)
def put(ctx, self, index, source, accumulate=False):
    """put(Tensor self, Tensor index, Tensor source, bool accumulate=False) -> Tensor"""
    if self.dtype is dt.bool_:
        raise ctx.unsupported("MIL scatters have no bool domain")
    flat = ctx.b.op("reshape", x=self, shape=[-1])
    index = wrap_index(ctx, ctx.b.op("reshape", x=index, shape=[-1]), flat, 0)
    updates = ctx.b.op("reshape", x=ctx.cast(source, self.dtype), shape=[-1])
    out = ctx.b.op("scatter", data=flat, indices=index, updates=updates, axis=0,
                   mode="add" if accumulate else "update")
    return ctx.b.op("reshape", x=out, shape=ctx.shape_var(self))


# -- writes: index_put, slice/select_scatter, masked_fill ------------------------------------------

def broadcast_to(ctx, x: Var, shape) -> Var:
    """x broadcast to a static `shape` (tile on size-1 dims after padding the rank with leading 1s)."""
    if tuple(x.shape) == tuple(shape):
        return x
    if not all(isinstance(d, int) for d in shape):
        raise ctx.unsupported(f"broadcasting {tuple(x.shape)} to a shape of run-time size {tuple(shape)}")
    lead = len(shape) - x.rank
    if lead:
        x = ctx.b.op("expand_dims", x=x, axes=list(range(lead)))
    reps = [n if d == 1 else 1 for d, n in zip(x.shape, shape)]
    return x if all(r == 1 for r in reps) else ctx.b.op("tile", x=x, reps=reps)


def _mask_coordinates(ctx, indices) -> list:
    """Index entries with each k-dim bool mask replaced by the k integer index tensors of its true
    elements' coordinates (torch's rule), of one run-time length."""
    out = []
    for t in indices:
        if t is None or t.dtype is not dt.bool_:
            out.append(t)
        elif t.rank == 0:
            raise ctx.unsupported("indexing with a 0-d bool mask (it adds a dim of size 0 or 1)")
        else:
            coords = ctx.b.op("non_zero", x=t)
            out.extend(select_axis(ctx, coords, 1, i) for i in range(t.rank))
    return out


def _masked_put(ctx, data: Var, position: int, mask: Var, values: Var, accumulate: bool) -> Var:
    """data[(:,) * position + (mask,)] = values. torch broadcasts values against the selection,
    shaped data.shape[:position] + [count] + trailing dims; the k-th selected element (row-major
    over the mask) takes entry k of values along the count axis. A running count of the mask gives
    each element its k, so no run-time length is needed, and a select writes the values."""
    trailing = data.rank - position - mask.rank
    cond = mask
    if position or trailing:
        cond = ctx.b.op("expand_dims", x=mask, axes=list(range(position)) +
                        list(range(position + mask.rank, data.rank)))
    value = ctx.cast(values, data.dtype)
    while value.rank > position + 1 + trailing and value.shape[0] == 1:
        value = ctx.b.op("squeeze", x=value, axes=[0])  # torch drops leading 1s of the values
    if value.rank > position + 1 + trailing:
        raise ctx.unsupported(f"values of shape {tuple(values.shape)} do not broadcast to the masked selection")
    if all(d == 1 for d in value.shape):
        value = ctx.b.op("reshape", x=value, shape=np.zeros(0, np.int32)) if value.rank else value
    else:
        if value.rank < position + 1 + trailing:
            value = ctx.b.op("expand_dims", x=value, axes=list(range(position + 1 + trailing - value.rank)))
        if value.shape[position] == 1:  # one value along the selection: it broadcasts over the mask
            if mask.rank > 1:
                value = ctx.b.op("expand_dims", x=value, axes=list(range(position + 1, position + mask.rank)))
        else:
            k = ctx.b.op("cumsum", x=ctx.b.op("reshape", x=ctx.cast(mask, dt.int32), shape=[-1]), axis=0,
                         exclusive=True)
            # Unselected elements past the last true one would count beyond the values: clamp them.
            last = ctx.b.op("sub", x=dim_size(ctx, value, position), y=np.int32(1))
            picked = gather_op(ctx, "gather", value, indices=ctx.b.op("minimum", x=k, y=last), axis=position)
            if mask.rank > 1:  # the flat mask axis back to the mask's dims
                def size(x, i):
                    return x.shape[i] if isinstance(x.shape[i], int) else dim_size(ctx, x, i)
                picked = ctx.b.op("reshape", x=picked, shape=ctx.int_list(
                    [size(value, i) for i in range(position)] + [size(mask, i) for i in range(mask.rank)] +
                    [size(value, i) for i in range(position + 1, value.rank)]))
            value = picked
    if accumulate:
        value = ctx.b.op("logical_or" if data.dtype is dt.bool_ else "add", x=data, y=value)
    return ctx.b.op("select", cond=cond, a=value, b=data)


@lowering(aten.index_put.default)
def index_put(ctx, self, indices, values, accumulate=False):
    """index_put(Tensor self, Tensor?[] indices, Tensor values, bool accumulate=False) -> Tensor"""
    positions, tensors = _index_entries(ctx, indices)
    if len(tensors) == 1 and tensors[0].dtype is dt.bool_:
        return _masked_put(ctx, self, positions[0], tensors[0], values, accumulate)
    if self.dtype is dt.bool_:
        raise ctx.unsupported("MIL scatters have no bool domain")
    idx = broadcast_indices(ctx, [wrap_index(ctx, t, self, p) for p, t in zip(positions, tensors)])
    nb = idx[0].rank
    rest = [i for i in range(self.rank) if i not in positions]
    perm = positions + rest
    # The updates follow torch's x[indices] layout; scatter_nd wants the index dims first.
    rest_dims = [self.shape[i] for i in rest]
    p0 = positions[0] if _adjacent(positions) else 0
    result_shape = rest_dims[:p0] + list(idx[0].shape) + rest_dims[p0:]
    updates = broadcast_to(ctx, ctx.cast(values, self.dtype), result_shape)
    updates = _transpose(ctx, updates, list(range(p0, p0 + nb)) + list(range(p0)) +
                         list(range(p0 + nb, len(result_shape))))
    coords = ctx.b.op("stack", values=idx, axis=nb) if len(idx) > 1 else \
        ctx.b.op("expand_dims", x=idx[0], axes=[nb])
    out = ctx.b.op("scatter_nd", data=_transpose(ctx, self, perm), indices=coords, updates=updates,
                   mode="add" if accumulate else "update")
    return _transpose(ctx, out, [perm.index(i) for i in range(self.rank)])


def _run_time_positions(ctx, x: Var, axis: int, start, end, step: int) -> Var:
    """range(start, end, step) along x's axis with torch's clamping, when a bound or the dim is
    known only at run time: an int32 vector from range_1d."""
    size = dim_size(ctx, x, axis)

    def bound(v, default):
        if v is None or (isinstance(v, int) and v >= INT32_MAX):
            return default
        if isinstance(v, int) and v < 0:
            v = ctx.b.op("add", x=size, y=np.int32(v))  # counts from the end
        # Clamp into [0, size], as a Python slice does.
        return ctx.b.op("maximum", x=ctx.b.op("minimum", x=ctx.promote(v, dtype=dt.int32)[0], y=size),
                        y=np.int32(0))

    first, stop = bound(start, ctx.const(np.int32(0))), bound(end, size)
    return ctx.b.op("range_1d", start=first, end=stop, step=np.int32(step))


def _scatter_slices(ctx, self: Var, axis: int, positions: Var, src: Var) -> Var:
    """self with the slices along axis at `positions` replaced by src (bool through int32)."""
    if self.dtype is dt.bool_:
        as_int = ctx.b.op("scatter", data=ctx.cast(self, dt.int32), indices=positions,
                          updates=ctx.cast(src, dt.int32), axis=axis, mode="update")
        return ctx.cast(as_int, dt.bool_)
    return ctx.b.op("scatter", data=self, indices=positions, updates=src, axis=axis, mode="update")


@lowering(aten.slice_scatter.default)
def slice_scatter(ctx, self, src, dim=0, start=None, end=None, step=1):
    """slice_scatter(Tensor self, Tensor src, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1) -> Tensor"""
    axis = axis_of(dim, self.rank)
    src = ctx.cast(src, self.dtype)
    d = self.shape[axis]
    if isinstance(step, Var) or step <= 0:
        raise ctx.unsupported(f"slice_scatter with step {step}: only constant positive steps")
    if isinstance(start, Var) or isinstance(end, Var) or not isinstance(d, int):
        # A splice could leave a run-time empty piece, which Core ML cannot hold; a scatter cannot.
        return _scatter_slices(ctx, self, axis, _run_time_positions(ctx, self, axis, start, end, step), src)
    first, stop, _ = slice(start, end, step).indices(d)
    if len(range(first, stop, step)) == 0:
        raise ctx.unsupported(f"slice_scatter over an empty slice [{start}:{end}:{step}]")
    if step == 1:
        # Splice: the part before the slice, src, the part after it.
        parts = [slice_axis(ctx, self, axis, 0, first) if first > 0 else None, src,
                 slice_axis(ctx, self, axis, stop, None) if stop < d else None]
        parts = [p for p in parts if p is not None]
        return ctx.b.op("concat", values=parts, axis=axis) if len(parts) > 1 else src
    positions = ctx.const(np.arange(first, stop, step, dtype=np.int32), dt.int32)
    return _scatter_slices(ctx, self, axis, positions, src)


@lowering(aten.select_scatter.default)
def select_scatter(ctx, self, src, dim, index):
    """select_scatter(Tensor self, Tensor src, int dim, SymInt index) -> Tensor"""
    axis = axis_of(dim, self.rank)
    d = self.shape[axis]
    src = ctx.b.op("expand_dims", x=src, axes=[axis])
    if isinstance(index, Var):
        return slice_scatter(ctx, self, src, axis, index, ctx.b.op("add", x=index, y=np.int32(1)), 1)
    if isinstance(d, int):
        index %= d
    return slice_scatter(ctx, self, src, axis, index, None if index == -1 else index + 1, 1)


@lowering(aten.copy.default)
def copy(ctx, self, src, non_blocking=False):
    """copy(Tensor self, Tensor src, bool non_blocking=False) -> Tensor"""
    # The functional form of `self.copy_(src)`: src broadcast to self's shape, in self's dtype.
    return broadcast_to(ctx, ctx.cast(src, self.dtype), self.shape)


@lowering(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def masked_fill(ctx, self, mask, value):
    """masked_fill.Scalar(Tensor self, Tensor mask, Scalar value) -> Tensor"""
    (value,) = ctx.promote(value, dtype=self.dtype)
    return ctx.b.op("select", cond=ctx.cast(mask, dt.bool_), a=value, b=self)


@lowering(aten.masked_scatter.default)
def masked_scatter(ctx, self, mask, source):
    """masked_scatter(Tensor self, Tensor mask, Tensor source) -> Tensor"""
    if not all(isinstance(d, int) for d in tuple(self.shape) + tuple(source.shape)):
        raise ctx.unsupported("masked_scatter needs static shapes")
    mask = broadcast_to(ctx, ctx.cast(mask, dt.bool_), self.shape)
    flat_mask = ctx.b.op("reshape", x=mask, shape=[-1])
    # The k-th selected element takes source's k-th element: k is the count of selected ones before it.
    taken = ctx.b.op("cumsum", x=ctx.cast(flat_mask, dt.int32), axis=0, exclusive=True)
    last = max(int(np.prod(source.shape)) - 1, 0)
    taken = ctx.b.op("minimum", x=taken, y=np.int32(last))  # unselected tail positions may run past the end
    flat_source = ctx.b.op("reshape", x=ctx.cast(source, self.dtype), shape=[-1])
    picked = gather_op(ctx, "gather", flat_source, indices=taken, axis=0)
    flat_self = ctx.b.op("reshape", x=self, shape=[-1])
    out = ctx.b.op("select", cond=flat_mask, a=picked, b=flat_self)
    return ctx.b.op("reshape", x=out, shape=list(self.shape))
