"""Ops whose result size depends on the input values: nonzero, masked_select, unique (also over a dim),
unique_consecutive, plus their fixed-size relatives nonzero_static and histogramdd. (Boolean-mask
indexing and assignment are in `indexing.py`.)

torch.export gives such a result an unbacked size (u0, ...). MIL's `non_zero` has the same kind of
run-time size, so its output type carries a fresh Symbol and everything downstream (gathers,
reductions, the model output, whose feature is then written without a fixed shape) works on it like
on any dynamic dim. The other data-dependent results are built from `non_zero` too: a gather at
the positions it finds. Where the result has a fixed size (nonzero_static, histograms) no run-time
size is needed at all: positions come from a running count (cumsum) and results are scattered.

Core ML has no zero-sized tensors: a model whose input makes one of these results empty (no nonzero
element) runs on the reference runtime but not on a device, and nodes whose result is empty for
every input (nonzero of a 0-d tensor) are refused.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ...mil.types import broadcast_shapes
from ..registry import lowering
from ._nn_helpers import to_numeric
from .elementwise import to_float
from .indexing import broadcast_to, dim_size, gather_op
from .shape import select_axis, slice_axis

aten = torch.ops.aten


# -- shared helpers --------------------------------------------------------------------------------

def _flatten(ctx, x: Var) -> Var:
    return x if x.rank == 1 else ctx.b.op("reshape", x=x, shape=[-1])


def _numel(ctx, x: Var) -> Var:
    """x's element count as an int32 scalar (a const when the shape is static)."""
    if all(isinstance(d, int) for d in x.shape):
        return ctx.const(np.int32(np.prod(x.shape, dtype=np.int64)), dt.int32)
    return ctx.b.op("reduce_prod", x=ctx.b.op("shape", x=x), axes=[0], keep_dims=False)


def _positions(ctx, n: Var) -> Var:
    """0, 1, ..., n - 1 as int32."""
    return ctx.b.op("range_1d", start=np.int32(0), end=n, step=np.int32(1))


def _nonzero_mask(ctx, x: Var) -> Var:
    """x != 0 as bool (NaN counts as nonzero, as in torch)."""
    if x.dtype is dt.bool_:
        return x
    return ctx.b.op("not_equal", x=x, y=ctx.const(np.zeros((), x.dtype.numpy), x.dtype))


def _broadcast_together(ctx, a: Var, b: Var) -> tuple[Var, Var]:
    """a and b tiled to their common broadcast shape (values unchanged, any dtype)."""
    shape = broadcast_shapes(tuple(a.shape), tuple(b.shape))
    if all(isinstance(d, int) for d in shape):
        return broadcast_to(ctx, a, shape), broadcast_to(ctx, b, shape)
    rank = len(shape)
    a, b = (x if x.rank == rank else ctx.b.op("expand_dims", x=x, axes=list(range(rank - x.rank)))
            for x in (a, b))
    # Core ML has no zero-sized dims, so the broadcast size is the larger of the two.
    sa, sb = ctx.b.op("shape", x=a), ctx.b.op("shape", x=b)
    target = ctx.b.op("maximum", x=sa, y=sb)
    return (ctx.b.op("tile", x=a, reps=ctx.b.op("floor_div", x=target, y=sa)),
            ctx.b.op("tile", x=b, reps=ctx.b.op("floor_div", x=target, y=sb)))


def _coordinates(ctx, x: Var) -> Var:
    """[numel(x), rank(x)] int32: the row-major coordinates of each element of x, in order."""
    rest = _positions(ctx, _numel(ctx, x))
    columns = []
    for axis in reversed(range(x.rank)):
        if axis == 0:
            columns.append(rest)  # already below x.shape[0]
            break
        size = dim_size(ctx, x, axis)
        columns.append(ctx.b.op("mod", x=rest, y=size))
        rest = ctx.b.op("floor_div", x=rest, y=size)
    return ctx.b.op("stack", values=columns[::-1], axis=1)


# -- nonzero and masked selection ------------------------------------------------------------------

@lowering(aten.nonzero.default)
def nonzero(ctx, self):
    """nonzero(Tensor self) -> Tensor"""
    if self.rank == 0:
        raise ctx.unsupported("nonzero of a 0-d tensor has rows of width 0; Core ML has no empty tensors")
    return ctx.b.op("non_zero", x=self)


@lowering(aten.nonzero_static.default)
def nonzero_static(ctx, self, size, fill_value=-1):
    """nonzero_static(Tensor self, *, SymInt size, int fill_value=-1) -> Tensor

    The k-th nonzero element's coordinates go to row k, found by a running count; rows past the
    count keep fill_value and nonzero elements past `size` are dropped. Every element is scattered
    somewhere, so the unwanted ones go to one spare row that is cut off at the end."""
    if isinstance(size, Var):
        raise ctx.unsupported("nonzero_static with a run-time size")
    if size <= 0 or self.rank == 0:
        raise ctx.unsupported(f"nonzero_static with a result of shape ({size}, {self.rank}): Core ML has "
                              "no empty tensors")
    (fill,) = ctx.promote(fill_value, dtype=dt.int32)
    keep = _flatten(ctx, _nonzero_mask(ctx, self))
    row = ctx.b.op("cumsum", x=ctx.cast(keep, dt.int32), axis=0, exclusive=True)
    spare = ctx.const(np.int32(size), dt.int32)
    wanted = ctx.b.op("logical_and", x=keep, y=ctx.b.op("less", x=row, y=spare))
    row = ctx.b.op("select", cond=wanted, a=row, b=spare)
    padded = ctx.b.op("fill", shape=[size + 1, self.rank], value=fill)
    out = ctx.b.op("scatter", data=padded, indices=row, updates=_coordinates(ctx, self), axis=0, mode="update")
    return ctx.b.op("slice_by_size", x=out, begin=[0, 0], size=[size, -1])


@lowering(aten.masked_select.default)
def masked_select(ctx, self, mask):
    """masked_select(Tensor self, Tensor mask) -> Tensor"""
    values, mask = _broadcast_together(ctx, self, ctx.cast(mask, dt.bool_))
    picked = ctx.b.op("non_zero", x=_flatten(ctx, mask))  # [count, 1]
    return gather_op(ctx, "gather_nd", _flatten(ctx, values), indices=picked)


# -- unique ----------------------------------------------------------------------------------------

def _shifted(ctx, rows: Var, count: Var, step: int) -> Var:
    """rows[i + step] for each i along axis 0, clamped into range (the first / last row repeats)."""
    index = ctx.b.op("add", x=_positions(ctx, count), y=np.int32(step))
    index = ctx.b.op("minimum", x=ctx.b.op("maximum", x=index, y=np.int32(0)),
                     y=ctx.b.op("sub", x=count, y=np.int32(1)))
    return ctx.b.op("gather", x=rows, indices=index, axis=0)


def _differs(ctx, rows: Var, other: Var) -> Var:
    """Whether row i of `rows` differs from row i of `other` in any element (NaN differs from itself)."""
    unequal = ctx.b.op("not_equal", x=rows, y=other)
    return unequal if rows.rank == 1 else _any(ctx, unequal, 1)


def _runs(ctx, rows: Var, want_inverse: bool, want_counts: bool) -> tuple[Var, Var | None, Var | None]:
    """Runs of equal consecutive rows (along axis 0): the first row of each run, the run index of
    every row, and the run lengths."""
    count = dim_size(ctx, rows, 0)
    starts = _differs(ctx, rows, _shifted(ctx, rows, count, -1))
    # Row 0 equals its clamped predecessor (itself) unless it holds a NaN; it always starts a run.
    starts = ctx.b.op("logical_or", x=starts, y=ctx.b.op("equal", x=_positions(ctx, count), y=np.int32(0)))
    first = ctx.b.op("non_zero", x=starts)  # [runs, 1]
    values = ctx.b.op("gather_nd", x=rows, indices=first)
    inverse = counts = None
    if want_inverse:
        inverse = ctx.b.op("sub", x=ctx.b.op("cumsum", x=ctx.cast(starts, dt.int32), axis=0), y=np.int32(1))
    if want_counts:
        ends = _differs(ctx, rows, _shifted(ctx, rows, count, 1))
        last_row = ctx.b.op("sub", x=count, y=np.int32(1))
        ends = ctx.b.op("logical_or", x=ends, y=ctx.b.op("equal", x=_positions(ctx, count), y=last_row))
        lengths = ctx.b.op("sub", x=ctx.b.op("non_zero", x=ends), y=ctx.b.op("sub", x=first, y=np.int32(1)))
        counts = _flatten(ctx, lengths)
    return values, inverse, counts


def _unique_flat(ctx, self: Var, sort: bool, want_inverse: bool, want_counts: bool) -> tuple:
    """unique over all elements: sorted values (or runs in place), inverse in self's shape, counts."""
    flat = _flatten(ctx, to_numeric(ctx, self))
    order = None
    if sort:
        order = ctx.b.op("argsort", x=flat, axis=0, ascending=True)
        flat = ctx.b.op("gather", x=flat, indices=order, axis=0)
    values, inverse, counts = _runs(ctx, flat, want_inverse, want_counts)
    if inverse is not None:
        if order is not None:
            # The run index belongs to the sorted position; send it back to the element's own place
            # (`order` is a permutation, so every position is overwritten).
            inverse = ctx.b.op("scatter", data=inverse, indices=order, updates=inverse, axis=0, mode="update")
        inverse = ctx.b.op("reshape", x=inverse, shape=ctx.shape_var(self))
    return ctx.cast(values, self.dtype), inverse, counts


@lowering(aten._unique2.default)
def unique2(ctx, self, sorted=True, return_inverse=False, return_counts=False):  # noqa: A002
    """_unique2(Tensor self, bool sorted=True, bool return_inverse=False, bool return_counts=False)
    -> (Tensor, Tensor, Tensor)

    Values always come sorted; torch's CPU kernel does the same for sorted=False, and any order is
    allowed there. Outputs not asked for are empty tensors in torch and are not built."""
    return _unique_flat(ctx, self, True, return_inverse, return_counts)


@lowering(aten._unique.default)
def unique(ctx, self, sorted=True, return_inverse=False):  # noqa: A002
    """_unique(Tensor self, bool sorted=True, bool return_inverse=False) -> (Tensor, Tensor)"""
    values, inverse, _ = _unique_flat(ctx, self, True, return_inverse, False)
    return values, inverse


@lowering(aten.unique_consecutive.default)
def unique_consecutive(ctx, self, return_inverse=False, return_counts=False, dim=None):
    """unique_consecutive(Tensor self, bool return_inverse=False, bool return_counts=False, int? dim=None)
    -> (Tensor, Tensor, Tensor)"""
    if dim is None:
        return _unique_flat(ctx, self, False, return_inverse, return_counts)
    return _unique_consecutive_dim(ctx, self, dim, return_inverse, return_counts)


@lowering(aten.unique_dim_consecutive.default)
def unique_dim_consecutive(ctx, self, dim, return_inverse=False, return_counts=False):
    """unique_dim_consecutive(Tensor self, int dim, bool return_inverse=False, bool return_counts=False)
    -> (Tensor, Tensor, Tensor)"""
    return _unique_consecutive_dim(ctx, self, dim, return_inverse, return_counts)


def _unique_consecutive_dim(ctx, self: Var, dim: int, want_inverse: bool, want_counts: bool) -> tuple:
    """Runs of equal consecutive slices along `dim`."""
    rows, restore = _slices_as_rows(ctx, self, dim)
    values, inverse, counts = _runs(ctx, rows, want_inverse, want_counts)
    return restore(values), inverse, counts


@lowering(aten.unique_dim.default)
def unique_dim(ctx, self, dim, sorted=True, return_inverse=False, return_counts=False):  # noqa: A002
    """unique_dim(Tensor self, int dim, bool sorted=True, bool return_inverse=False, bool return_counts=False)
    -> (Tensor, Tensor, Tensor)

    The distinct slices along `dim` in lexicographic order. MIL sorts by one key and does not promise
    a stable sort (which sorting by one element at a time would need), so slices are ranked by
    comparing every pair: a slice's place is the number of distinct slices before it. That costs
    slices^2 x slice length, fine for the few hundred slices unique over a dim usually sees."""
    rows, restore = _slices_as_rows(ctx, self, dim)
    op = ctx.b.op
    same, before, earlier = _row_order(ctx, rows)
    kept = op("logical_not", x=_any(ctx, op("logical_and", x=same, y=earlier), 1))  # first of its group
    kept_before = op("logical_and", x=before, y=op("expand_dims", x=kept, axes=[1]))  # [j, i]
    rank = op("reduce_sum", x=ctx.cast(kept_before, dt.int32), axes=[0], keep_dims=False)
    first = op("non_zero", x=kept)  # [distinct, 1]
    place = op("gather_nd", x=rank, indices=first)  # a permutation of 0 .. distinct - 1

    def in_order(x: Var) -> Var:
        kept_x = op("gather_nd", x=x, indices=first)
        return op("scatter", data=kept_x, indices=place, updates=kept_x, axis=0, mode="update")

    counts = None
    if return_counts:
        counts = in_order(op("reduce_sum", x=ctx.cast(same, dt.int32), axes=[1], keep_dims=False))
    return restore(in_order(rows)), rank if return_inverse else None, counts


def _any(ctx, x: Var, axis: int) -> Var:
    return ctx.cast(ctx.b.op("reduce_max", x=ctx.cast(x, dt.int32), axes=[axis], keep_dims=False), dt.bool_)


def _row_order(ctx, rows: Var) -> tuple[Var, Var, Var]:
    """Pairwise relations of the rows of [n, k]: same[i, j] (equal; a row is the same as itself even
    with a NaN), before[i, j] (row i sorts strictly before row j) and earlier[i, j] (j < i).

    The order is lexicographic; rows holding a NaN compare with nothing, so they go first, by
    position (torch's sort also puts them first, in an order of its own), which keeps the order total."""
    op = ctx.b.op
    a, b = op("expand_dims", x=rows, axes=[1]), op("expand_dims", x=rows, axes=[0])
    unequal = ctx.cast(op("not_equal", x=a, y=b), dt.int32)  # [i, j, k]
    undecided = op("equal", x=op("cumsum", x=unequal, axis=2, exclusive=True), y=np.int32(0))
    before = _any(ctx, op("logical_and", x=op("less", x=a, y=b), y=undecided), 2)
    j = _positions(ctx, dim_size(ctx, rows, 0))
    i = op("expand_dims", x=j, axes=[1])
    same = op("logical_or", x=op("equal", x=op("reduce_sum", x=unequal, axes=[2], keep_dims=False), y=np.int32(0)),
              y=op("equal", x=i, y=j))
    if rows.dtype.is_float:
        nan = _differs(ctx, rows, rows)
        nan_i, nan_j = op("expand_dims", x=nan, axes=[1]), op("expand_dims", x=nan, axes=[0])
        nan_first = op("logical_and", x=nan_i, y=op("logical_or", x=op("logical_not", x=nan_j), y=op("less", x=i, y=j)))
        before = op("select", cond=op("logical_or", x=nan_i, y=nan_j), a=nan_first, b=before)
    return same, before, op("less", x=j, y=i)


def _slices_as_rows(ctx, self: Var, dim: int):
    """The slices of self along `dim` as the rows of a 2-D numeric tensor, and the function that
    turns a [n, row] result back into slices (n of them along `dim`, in self's dtype)."""
    if self.rank == 0:
        raise ctx.unsupported("unique over a dim of a 0-d tensor")
    axis = dim % self.rank
    perm = [axis] + [i for i in range(self.rank) if i != axis]
    x = to_numeric(ctx, self)
    if axis:
        x = ctx.b.op("transpose", x=x, perm=perm)
    rest = list(x.shape[1:])
    if all(isinstance(d, int) for d in rest):
        width = int(np.prod(rest, dtype=np.int64))
    else:
        tail = ctx.b.op("slice_by_index", x=ctx.b.op("shape", x=x), begin=[1], end=[x.rank])
        width = ctx.b.op("reduce_prod", x=tail, axes=[0], keep_dims=False)
    rows = ctx.b.op("reshape", x=x, shape=ctx.int_list([-1, width]))

    def restore(values: Var) -> Var:
        sizes = [-1] + [d if isinstance(d, int) else dim_size(ctx, x, i + 1) for i, d in enumerate(rest)]
        values = ctx.b.op("reshape", x=values, shape=ctx.int_list(sizes))
        if axis:
            values = ctx.b.op("transpose", x=values, perm=[perm.index(i) for i in range(self.rank)])
        return ctx.cast(values, self.dtype)

    return rows, restore


# -- histogramdd -----------------------------------------------------------------------------------
# The histogram's size is fixed by `bins`; only its contents depend on the data. Each point's bin along
# a dim is the number of edges at or below it, minus one, with the last edge inclusive (what torch's
# binary search and its interpolation-plus-local-search both find); points outside the outer edges
# (and NaN) are not counted. Bins are combined row-major and counted with one scatter-add. Comparing
# against every edge costs points x edges per dim, which stays small for the bin counts histograms use.

def _points(ctx, self: Var, dims: int) -> Var:
    """The input as [points, dims] in the program's float type (torch takes the last dim as the point)."""
    if self.rank < 2 or self.shape[-1] != dims:
        raise ctx.unsupported(f"histogramdd of a {tuple(self.shape)} tensor with {dims} bin specifications: "
                              "the input needs rank >= 2 and one bin specification per entry of its last dim")
    x = to_float(ctx, self)
    return x if x.rank == 2 else ctx.b.op("reshape", x=x, shape=[-1, dims])


def _uniform_edges(ctx, points: Var, dim: int, bins: int, range_) -> Var:
    """bins + 1 evenly spaced edges from the range (or the data's min and max) of one dim; an empty
    range is widened by 0.5 on both sides, as torch does."""
    if bins < 1:
        raise ctx.unsupported(f"histogramdd with {bins} bins along dim {dim}")
    if range_ is not None:
        lo, hi = float(range_[2 * dim]), float(range_[2 * dim + 1])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ctx.unsupported(f"histogramdd range [{lo}, {hi}] along dim {dim} is not a finite interval")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        # torch's own linspace, so the edges are the eager ones bit for bit.
        return ctx.const(torch.linspace(lo, hi, bins + 1, dtype=torch.float32).numpy(), ctx.float_dtype)
    column = select_axis(ctx, points, 1, dim)
    lo = ctx.b.op("reduce_min", x=column, axes=[0], keep_dims=False)
    hi = ctx.b.op("reduce_max", x=column, axes=[0], keep_dims=False)
    widen = ctx.b.op("select", cond=ctx.b.op("equal", x=lo, y=hi), a=ctx.const(0.5, ctx.float_dtype),
                     b=ctx.const(0.0, ctx.float_dtype))
    lo, hi = ctx.b.op("sub", x=lo, y=widen), ctx.b.op("add", x=hi, y=widen)
    # Like torch's linspace: the first half counts up from lo, the second half down from hi, so both
    # outer edges are exact.
    step = ctx.b.op("real_div", x=ctx.b.op("sub", x=hi, y=lo), y=ctx.const(float(bins), ctx.float_dtype))
    k = np.arange(bins + 1)
    up = ctx.b.op("add", x=lo, y=ctx.b.op("mul", x=step, y=ctx.const(k.astype(np.float32), ctx.float_dtype)))
    down = ctx.b.op("sub", x=hi, y=ctx.b.op("mul", x=step, y=ctx.const((bins - k).astype(np.float32),
                                                                       ctx.float_dtype)))
    return ctx.b.op("select", cond=ctx.const(k < (bins + 1) // 2, dt.bool_), a=up, b=down)


def _histogram(ctx, points: Var, edges: list[Var], weight: Var | None, density: bool) -> Var:
    bins = []
    index = inside = None
    for dim, e in enumerate(edges):
        if e.rank != 1 or not isinstance(e.shape[0], int) or e.shape[0] < 2:
            raise ctx.unsupported(f"histogramdd bin edges of shape {tuple(e.shape)} along dim {dim}: "
                                  "they need a static length of at least 2")
        n = e.shape[0] - 1
        bins.append(n)
        x = select_axis(ctx, points, 1, dim)
        at_or_below = ctx.b.op("less_equal", x=ctx.b.op("expand_dims", x=e, axes=[0]),
                               y=ctx.b.op("expand_dims", x=x, axes=[1]))
        passed = ctx.b.op("reduce_sum", x=ctx.cast(at_or_below, dt.int32), axes=[1], keep_dims=False)
        pos = ctx.b.op("minimum", x=ctx.b.op("maximum", x=ctx.b.op("sub", x=passed, y=np.int32(1)), y=np.int32(0)),
                       y=np.int32(n - 1))
        within = ctx.b.op("logical_and", x=ctx.b.op("greater_equal", x=x, y=select_axis(ctx, e, 0, 0)),
                          y=ctx.b.op("less_equal", x=x, y=select_axis(ctx, e, 0, n)))
        index = pos if index is None else ctx.b.op("add", x=ctx.b.op("mul", x=index, y=np.int32(n)), y=pos)
        inside = within if inside is None else ctx.b.op("logical_and", x=inside, y=within)
    total = int(np.prod(bins, dtype=np.int64))
    if weight is None:
        # Counts in int32 are exact at any size (fp16 is not past 2048).
        amount, dtype = ctx.cast(inside, dt.int32), dt.int32
    else:
        dtype = ctx.float_dtype
        amount = ctx.b.op("select", cond=inside, a=_flatten(ctx, ctx.cast(weight, dtype)),
                          b=ctx.const(0.0, dtype))
    zeros = ctx.b.op("fill", shape=[total], value=ctx.const(np.zeros((), dtype.numpy), dtype))
    hist = ctx.b.op("scatter", data=zeros, indices=index, updates=amount, axis=0, mode="add")
    hist = ctx.b.op("reshape", x=to_float(ctx, hist), shape=bins)
    if density:
        hist = ctx.b.op("real_div", x=hist, y=ctx.b.op("reduce_sum", x=hist, axes=list(range(len(bins))),
                                                       keep_dims=True))
        for dim, (e, n) in enumerate(zip(edges, bins)):
            widths = ctx.b.op("sub", x=slice_axis(ctx, e, 0, 1, None), y=slice_axis(ctx, e, 0, 0, n))
            shape = [n if i == dim else 1 for i in range(len(bins))]
            hist = ctx.b.op("real_div", x=hist, y=ctx.b.op("reshape", x=widths, shape=shape))
    return hist


@lowering(aten._histogramdd_bin_edges.default)
def histogramdd_bin_edges(ctx, self, bins, range=None, weight=None, density=False):  # noqa: A002
    """_histogramdd_bin_edges(Tensor self, int[] bins, *, float[]? range=None, Tensor? weight=None,
    bool density=False) -> Tensor[]"""
    points = _points(ctx, self, len(bins))
    return tuple(_uniform_edges(ctx, points, d, n, range) for d, n in enumerate(bins))


@lowering(aten._histogramdd_from_bin_cts.default)
def histogramdd_from_bin_cts(ctx, self, bins, range=None, weight=None, density=False):  # noqa: A002
    """_histogramdd_from_bin_cts(Tensor self, int[] bins, *, float[]? range=None, Tensor? weight=None,
    bool density=False) -> Tensor"""
    points = _points(ctx, self, len(bins))
    edges = [_uniform_edges(ctx, points, d, n, range) for d, n in enumerate(bins)]
    return _histogram(ctx, points, edges, weight, density)


@lowering(aten._histogramdd_from_bin_tensors.default)
def histogramdd_from_bin_tensors(ctx, self, bins, weight=None, density=False):
    """_histogramdd_from_bin_tensors(Tensor self, Tensor[] bins, *, Tensor? weight=None, bool density=False)
    -> Tensor"""
    points = _points(ctx, self, len(bins))
    return _histogram(ctx, points, [to_float(ctx, b) for b in bins], weight, density)
