"""Shape, view and layout ops: reshape, permute, expand, squeeze, cat, split, slice, select, flip, roll,
repeat, unbind, unfold, diagonal and the aliasing no-ops (padding is in `padding.py`).

Core ML tensors have no strides and no aliasing, so every view is a value: `view`, `reshape` and
`_unsafe_view` are one `reshape`, `clone`/`alias`/`detach` return their input. Sizes may hold symbolic
ints (int32 scalar Vars); `ctx.int_list` turns such a list into a run-time shape tensor. Core ML has no
zero-sized tensors, so a node that would create one is refused.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering

aten = torch.ops.aten

# int32 bounds: a slice bound beyond them means "to the end" (torch passes sys.maxsize).
INT32_MAX = 2**31 - 1


def axis_of(dim: int, rank: int) -> int:
    """A possibly negative torch dim as an axis in [0, rank) (a scalar counts as rank 1)."""
    return dim % max(rank, 1)


def int_vector(ctx, items) -> Var:
    """A list of ints / int32 scalar Vars as a 1-D int32 tensor (also when the list is empty)."""
    as_list = ctx.int_list(list(items))
    return as_list if isinstance(as_list, Var) else ctx.const(np.asarray(as_list, np.int32), dt.int32)


def refuse_empty_result(ctx) -> None:
    """Core ML has no zero-sized tensors: refuse a node torch says produces one."""
    val = ctx.node.meta.get("val") if ctx.node is not None else None
    vals = val if isinstance(val, (list, tuple)) else [val]
    for v in vals:
        if isinstance(v, torch.Tensor) and any(isinstance(s, int) and s == 0 for s in v.shape):
            raise ctx.unsupported(f"the result has a zero-sized dim {tuple(v.shape)}; Core ML has no empty tensors")


def reshape_to(ctx, x: Var, sizes) -> Var:
    sizes = list(sizes)
    if any(not isinstance(s, Var) and s == 0 for s in sizes):
        raise ctx.unsupported(f"reshape to {sizes}: Core ML has no zero-sized tensors")
    symbolic = [i for i, s in enumerate(sizes) if isinstance(s, Var)]
    if symbolic:
        # One run-time size can be inferred from the volume, which keeps the shape a constant.
        sizes = _static_but_one(ctx, sizes) or sizes
    if not symbolic and tuple(sizes) == tuple(x.shape):
        return x
    return ctx.b.op("reshape", x=x, shape=int_vector(ctx, sizes))


def _static_but_one(ctx, sizes: list) -> list | None:
    """`sizes` as constants with a single -1, when torch's metadata (or the list) allows it."""
    val = ctx.node.meta.get("val") if ctx.node is not None else None
    if isinstance(val, torch.Tensor) and len(val.shape) == len(sizes):
        dims = [(d if isinstance(d, int) else d.node.maybe_as_int()) if _static_dim(d) else -1 for d in val.shape]
        if dims.count(-1) <= 1:
            return dims
    symbolic = [i for i, s in enumerate(sizes) if isinstance(s, Var)]
    if len(symbolic) == 1 and -1 not in sizes:
        return [-1 if i == symbolic[0] else s for i, s in enumerate(sizes)]
    return None


def match_static_meta(ctx, x: Var) -> Var:
    """MIL type inference may lose a dim torch knows is static (e.g. x[:2] of a run-time sized dim);
    a reshape to torch's dims (at most one -1) restores it, so later ops and outputs stay static."""
    val = ctx.node.meta.get("val") if ctx.node is not None else None
    if not isinstance(val, torch.Tensor) or len(val.shape) != x.rank:
        return x
    dims = [(d if isinstance(d, int) else d.node.maybe_as_int()) if _static_dim(d) else -1 for d in val.shape]
    lost = any(want != -1 and not isinstance(got, int) for want, got in zip(dims, x.shape))
    if not lost or dims.count(-1) > 1:
        return x
    return ctx.b.op("reshape", x=x, shape=dims)


def _static_dim(d) -> bool:
    # Never int() a SymInt: that would specialize it.
    return isinstance(d, int) or getattr(d, "node", None) is not None and d.node.maybe_as_int() is not None


def slice_axis(ctx, x: Var, axis: int, start=None, end=None, step: int = 1) -> Var:
    """x[start:end:step] along one axis with Python's clamping; start/end may be int32 scalar Vars."""
    rank, d = x.rank, x.shape[axis]
    if isinstance(step, Var) or step <= 0:
        raise ctx.unsupported(f"slice step {step}: only constant positive steps are supported")
    bounds_static = not isinstance(start, Var) and not isinstance(end, Var)
    if bounds_static and isinstance(d, int):
        first, stop, _ = slice(start, end, step).indices(d)
        if len(range(first, stop, step)) == 0:
            raise ctx.unsupported(f"slice [{start}:{end}:{step}] of a dim of {d} is empty")
        if (first, stop, step) == (0, d, 1):
            return x
        start, end = first, stop
    if (isinstance(start, int) and start >= INT32_MAX) or (isinstance(end, int) and end <= -INT32_MAX):
        raise ctx.unsupported(f"slice [{start}:{end}] is empty; Core ML has no empty tensors")
    begin_mask = [True] * rank
    end_mask = [True] * rank
    begin, stop = [0] * rank, [0] * rank
    if start is not None and (isinstance(start, Var) or start > -INT32_MAX):
        begin[axis], begin_mask[axis] = start, False
    if end is not None and (isinstance(end, Var) or end < INT32_MAX):
        stop[axis], end_mask[axis] = end, False
    stride = [1] * rank
    stride[axis] = step
    return ctx.b.op("slice_by_index", x=x, begin=int_vector(ctx, begin), end=int_vector(ctx, stop),
                    stride=stride, begin_mask=begin_mask, end_mask=end_mask)


def select_axis(ctx, x: Var, axis: int, index) -> Var:
    """x[..., index, ...] along `axis`, dropping the axis; index may be an int32 scalar Var."""
    rank, d = x.rank, x.shape[axis]
    end_mask = [True] * rank
    begin, end = [0] * rank, [0] * rank
    if isinstance(index, Var):
        begin[axis], end[axis] = index, ctx.b.op("add", x=index, y=np.int32(1))
        end_mask[axis] = False
    else:
        if isinstance(d, int):
            if not -d <= index < d:
                raise ctx.unsupported(f"index {index} is out of range for a dim of {d}")
            index %= d
        begin[axis] = index
        if index != -1:  # -1 runs to the end of the dim
            end[axis], end_mask[axis] = index + 1, False
    begin_mask = [i != axis for i in range(rank)]
    squeeze_mask = [i == axis for i in range(rank)]
    return ctx.b.op("slice_by_index", x=x, begin=int_vector(ctx, begin), end=int_vector(ctx, end),
                    begin_mask=begin_mask, end_mask=end_mask, squeeze_mask=squeeze_mask)


# -- views ---------------------------------------------------------------------------------------

@lowering(aten.view.default, aten._unsafe_view.default, aten.view_copy.default)
def view(ctx, self, size):
    """view(Tensor(a) self, SymInt[] size) -> Tensor(a)"""
    return reshape_to(ctx, self, size)


@lowering(aten.reshape.default)
def reshape(ctx, self, shape):
    """reshape(Tensor(a) self, SymInt[] shape) -> Tensor(a)"""
    return reshape_to(ctx, self, shape)


@lowering(aten.clone.default, aten.alias.default, aten.alias_copy.default, aten.detach.default,
          aten.lift_fresh_copy.default)
def clone(ctx, self, memory_format=None):
    """clone(Tensor self, *, MemoryFormat? memory_format=None) -> Tensor"""
    # Core ML values never alias and have no memory format: a copy is the value itself.
    return self


@lowering(aten.permute.default, aten.permute_copy.default)
def permute(ctx, self, dims):
    """permute(Tensor(a) self, int[] dims) -> Tensor(a)"""
    perm = [axis_of(d, self.rank) for d in dims]
    if perm == list(range(self.rank)):
        return self
    return ctx.b.op("transpose", x=self, perm=perm)


@lowering(aten.expand.default, aten.expand_copy.default)
def expand(ctx, self, size, implicit=False):
    """expand(Tensor(a) self, SymInt[] size, *, bool implicit=False) -> Tensor(a)"""
    x = self
    lead = len(size) - x.rank
    if lead:
        x = ctx.b.op("expand_dims", x=x, axes=list(range(lead)))
    reps, tiled = [], False
    for d, s in zip(x.shape, size):
        if not isinstance(s, Var) and s == 0:
            raise ctx.unsupported("expand to a zero-sized dim: Core ML has no empty tensors")
        # torch only broadcasts dims of size 1; every other dim keeps its size (-1 or equal).
        grow = d == 1 and (isinstance(s, Var) or s not in (-1, 1))
        reps.append(s if grow else 1)
        tiled = tiled or grow
    return ctx.b.op("tile", x=x, reps=int_vector(ctx, reps)) if tiled else x


@lowering(aten.squeeze.dims, aten.squeeze.dim, aten.squeeze.default)
def squeeze(ctx, self, dim=None):
    """squeeze.dims(Tensor(a) self, int[] dim) -> Tensor(a)"""
    if self.rank == 0:
        return self
    dims = range(self.rank) if dim is None else [dim] if isinstance(dim, int) else dim
    # torch keeps a listed dim that is not 1; a symbolic dim was not specialized to 1, so it stays.
    axes = sorted({axis_of(d, self.rank) for d in dims if self.shape[axis_of(d, self.rank)] == 1})
    return ctx.b.op("squeeze", x=self, axes=axes) if axes else self


@lowering(aten.unsqueeze.default)
def unsqueeze(ctx, self, dim):
    """unsqueeze(Tensor(a) self, int dim) -> Tensor(a)"""
    return ctx.b.op("expand_dims", x=self, axes=[dim % (self.rank + 1)])


# -- joining and splitting -----------------------------------------------------------------------

@lowering(aten.cat.default)
def cat(ctx, tensors, dim=0):
    """cat(Tensor[] tensors, int dim=0) -> Tensor"""
    # torch.cat skips legacy empty 1-D tensors; Core ML cannot hold them anyway.
    values = [t for t in tensors if not (t.rank == 1 and t.shape[0] == 0)]
    values = ctx.promote(*values, dtype=ctx.out_dtype())
    if len(values) == 1:
        return values[0]
    return ctx.b.op("concat", values=values, axis=axis_of(dim, values[0].rank))


@lowering(aten.stack.default)
def stack(ctx, tensors, dim=0):
    """stack(Tensor[] tensors, int dim=0) -> Tensor"""
    values = ctx.promote(*tensors, dtype=ctx.out_dtype())
    return ctx.b.op("stack", values=values, axis=dim % (values[0].rank + 1))


@lowering(aten.split_with_sizes.default)
def split_with_sizes(ctx, self, split_sizes, dim=0):
    """split_with_sizes(Tensor(a -> *) self, SymInt[] split_sizes, int dim=0) -> Tensor(a)[]"""
    sizes = list(split_sizes)
    axis = axis_of(dim, self.rank)
    if any(isinstance(s, Var) for s in sizes):
        # Run-time sizes: one slice per piece, each starting where the previous one ended.
        pieces, begin = [], 0
        for size in sizes:
            end = size if isinstance(begin, int) and begin == 0 else _add_ints(ctx, begin, size)
            pieces.append(slice_axis(ctx, self, axis, begin, end))
            begin = end
        return tuple(pieces)
    if 0 in sizes:
        raise ctx.unsupported(f"split sizes {sizes} make an empty piece; Core ML has no empty tensors")
    if len(sizes) == 1:
        return (self,)
    pieces = ctx.b.op("split", x=self, split_sizes=sizes, axis=axis)
    return tuple(pieces)


def _add_ints(ctx, a, b):
    """a + b for ints and int32 scalar Vars."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    x, y = ctx.promote(a, b, dtype=dt.int32)
    return ctx.b.op("add", x=x, y=y)


# -- slicing -------------------------------------------------------------------------------------

@lowering(aten.slice.Tensor, aten.slice_copy.Tensor)
def slice_(ctx, self, dim=0, start=None, end=None, step=1):
    """slice.Tensor(Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1) -> Tensor(a)"""
    return match_static_meta(ctx, slice_axis(ctx, self, axis_of(dim, self.rank), start, end, step))


@lowering(aten.narrow_copy.default)
def narrow_copy(ctx, self, dim, start, length):
    """narrow_copy(Tensor self, int dim, SymInt start, SymInt length) -> Tensor"""
    if isinstance(start, Var) or isinstance(length, Var):
        raise ctx.unsupported("narrow_copy with a run-time start or length")
    return slice_axis(ctx, self, axis_of(dim, self.rank), start, start + length)


@lowering(aten.select.int, aten.select_copy.int)
def select(ctx, self, dim, index):
    """select.int(Tensor(a) self, int dim, SymInt index) -> Tensor(a)"""
    return select_axis(ctx, self, axis_of(dim, self.rank), index)


# -- reordering and repetition -------------------------------------------------------------------

@lowering(aten.flip.default)
def flip(ctx, self, dims):
    """flip(Tensor self, int[] dims) -> Tensor"""
    axes = sorted({axis_of(d, self.rank) for d in dims if self.rank})
    return ctx.b.op("reverse", x=self, axes=axes) if axes else self


@lowering(aten.roll.default)
def roll(ctx, self, shifts, dims=()):
    """roll(Tensor self, SymInt[1] shifts, int[1] dims=[]) -> Tensor"""
    # Two slices and a concat per dim; torch's own decomposition gathers with computed indices.
    if not dims:
        flat = reshape_to(ctx, self, [-1])
        return reshape_to(ctx, roll(ctx, flat, shifts, [0]), list(self.shape))
    x = self
    for shift, dim in zip(shifts, dims):
        axis = axis_of(dim, x.rank)
        d = x.shape[axis]
        if isinstance(shift, Var) or not isinstance(d, int):
            raise ctx.unsupported("roll needs a constant shift along a dim of static size")
        cut = d - shift % d
        if cut != d:
            x = ctx.b.op("concat", values=[slice_axis(ctx, x, axis, cut, None), slice_axis(ctx, x, axis, 0, cut)],
                         axis=axis)
    return x


@lowering(aten.repeat.default)
def repeat(ctx, self, repeats):
    """repeat(Tensor self, SymInt[] repeats) -> Tensor"""
    if any(not isinstance(r, Var) and r == 0 for r in repeats):
        raise ctx.unsupported("repeat by 0 gives an empty tensor; Core ML has no empty tensors")
    x = self
    lead = len(repeats) - x.rank
    if lead:
        x = ctx.b.op("expand_dims", x=x, axes=list(range(lead)))
    if all(not isinstance(r, Var) and r == 1 for r in repeats):
        return x
    return ctx.b.op("tile", x=x, reps=int_vector(ctx, repeats))


@lowering(aten.unbind.int, aten.unbind_copy.int)
def unbind(ctx, self, dim=0):
    """unbind.int(Tensor(a -> *) self, int dim=0) -> Tensor(a)[]"""
    axis = axis_of(dim, self.rank)
    n = self.shape[axis]
    if not isinstance(n, int):
        raise ctx.unsupported("unbind along a dim of run-time size")
    pieces = ctx.b.op("split", x=self, num_splits=n, axis=axis) if n > 1 else (self,)
    pieces = pieces if isinstance(pieces, tuple) else (pieces,)
    return tuple(ctx.b.op("squeeze", x=p, axes=[axis]) for p in pieces)


@lowering(aten.diagonal.default, aten.diagonal_copy.default)
def diagonal(ctx, self, offset=0, dim1=0, dim2=1):
    """diagonal(Tensor(a) self, int offset=0, int dim1=0, int dim2=1) -> Tensor(a)"""
    a1, a2 = axis_of(dim1, self.rank), axis_of(dim2, self.rank)
    n, m = self.shape[a1], self.shape[a2]
    rest = [i for i in range(self.rank) if i not in (a1, a2)]
    rest_dims = [self.shape[i] for i in rest]
    if not isinstance(n, int) or not isinstance(m, int) or sum(not isinstance(d, int) for d in rest_dims) > 1:
        raise ctx.unsupported("diagonal of dims of run-time size")
    first, stop = max(0, -offset), min(n, m - offset)
    if stop <= first:
        raise ctx.unsupported(f"diagonal with offset {offset} of a {n}x{m} matrix is empty")
    # Move the two dims last and flatten them: element (i, i + offset) sits at i * m + i + offset.
    x = self if rest + [a1, a2] == list(range(self.rank)) else ctx.b.op("transpose", x=self, perm=rest + [a1, a2])
    x = reshape_to(ctx, x, [d if isinstance(d, int) else -1 for d in rest_dims] + [n * m])
    positions = np.asarray([i * (m + 1) + offset for i in range(first, stop)], np.int32)
    return ctx.b.op("gather", x=x, indices=positions, axis=len(rest))


@lowering(aten.unfold.default)
def unfold(ctx, self, dimension, size, step):
    """unfold(Tensor(a) self, int dimension, int size, int step) -> Tensor(a)"""
    if self.rank == 0:
        return ctx.b.op("expand_dims", x=self, axes=[0])  # torch: one window of the one element
    axis = axis_of(dimension, self.rank)
    windows = ctx.b.op("sliding_windows", x=self, axis=axis, size=size, stride=step)
    # MIL puts the window elements right after `axis`; torch puts them last.
    perm = [i for i in range(windows.rank) if i != axis + 1] + [axis + 1]
    return ctx.b.op("transpose", x=windows, perm=perm) if axis + 1 != windows.rank - 1 else windows


@lowering(aten.as_strided.default, aten.as_strided_copy.default)
def as_strided(ctx, self, size, stride, storage_offset=None):
    """as_strided(Tensor(a) self, SymInt[] size, SymInt[] stride, SymInt? storage_offset=None) -> Tensor(a)"""
    # Core ML has no storage: this is only expressible when self's torch storage is its own row-major
    # elements, which torch's metadata of the input node tells (a dry run without a node refuses).
    src = ctx.node.args[0].meta.get("val") if ctx.node is not None and ctx.node.args else None
    if not isinstance(src, torch.Tensor) or not all(isinstance(v, int) for v in [*size, *stride, *src.shape]) \
            or not src.is_contiguous() or src.storage_offset() != 0:
        raise ctx.unsupported("as_strided is only supported on a contiguous tensor with static sizes and strides")
    if 0 in size:
        raise ctx.unsupported("as_strided to an empty tensor; Core ML has no empty tensors")
    grid = np.indices(tuple(size), dtype=np.int64)
    positions = (storage_offset or 0) + sum(g * s for g, s in zip(grid, stride))
    flat = reshape_to(ctx, self, [-1]) if self.rank != 1 else self
    return ctx.b.op("gather", x=flat, indices=ctx.const(np.asarray(positions, np.int32), dt.int32), axis=0)
