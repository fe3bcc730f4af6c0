"""Order statistics, searching, membership and histograms: kthvalue, median, nanmedian, mode,
searchsorted, bucketize, isin, histc and histogram.

Order statistics sort along the dim with MIL `argsort` / `topk` (the catalogue's sort is stable and
ranks NaN above every number, as torch's does) and then gather at a position. The position can depend
on the data (how many NaNs a row holds), so it is gathered, not sliced.

Searching is torch's own binary search unrolled into bit_length(M) steps of gather + compare over a
sequence of static length M. Taking exactly torch's steps reproduces its answers where the input
breaks the contract too (NaN values, unsorted sequences), at O(log M) work per value instead of the
O(M) of counting the boundaries below each value. `mode` uses the same search to count repeats.

Histograms compute each element's bin, then one `scatter` in "add" mode accumulates the counts (as
int32, exact) or the weights; elements outside the range add nothing. Bins follow torch: the last bin
includes its right edge, histc bins by linear interpolation, histogram by searching its edges.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from ._nn_helpers import rank, to_numeric
from .elementwise import binary, numeric_dtype, select, to_float

aten = torch.ops.aten


# -- shared helpers --------------------------------------------------------------------------------

def _reduced_axis(ctx, x: Var, dim: int, what: str) -> tuple[Var, int]:
    """x and the axis a reduction over `dim` works on; a 0-d tensor is seen as a one-element vector
    (callers squeeze that axis away again, so the result is 0-d as in torch)."""
    if rank(x) == 0:
        if dim not in (0, -1):
            raise ctx.unsupported(f"{what}: dim {dim} is out of range for a 0-d tensor")
        return ctx.b.op("expand_dims", x=x, axes=[0]), 0
    if not -rank(x) <= dim < rank(x):
        raise ctx.unsupported(f"{what}: dim {dim} is out of range for rank {rank(x)}")
    return x, dim % rank(x)


def _static_size(ctx, x: Var, axis: int, what: str) -> int:
    size = x.shape[axis]
    if not isinstance(size, int):
        raise ctx.unsupported(f"{what} along a dim of dynamic size (the unrolled search needs its length)")
    return size


def _size(ctx, x: Var, axis: int):
    """The size of x along `axis`: an int when static, else an int32 [1] tensor (broadcasts along)."""
    size = x.shape[axis]
    if isinstance(size, int):
        return size
    return ctx.b.op("gather", x=ctx.b.op("shape", x=x), indices=[axis], axis=0)


_PYTHON_INT_OPS = {"add": operator.add, "sub": operator.sub, "floor_div": operator.floordiv,
                   "minimum": min, "maximum": max}


def _int(ctx, mil_op: str, a, b):
    """Integer arithmetic on python ints or int32 tensors; python when both are ints."""
    if not isinstance(a, Var) and not isinstance(b, Var):
        return _PYTHON_INT_OPS[mil_op](a, b)
    return binary(ctx, mil_op, a, b, dt.int32)


def _finish_reduced(ctx, outputs, axis: int, keepdim: bool, scalar_input: bool):
    """Drop the reduced axis (kept as size 1 while gathering) unless keepdim on a real axis."""
    if keepdim and not scalar_input:
        return outputs
    return tuple(ctx.b.op("squeeze", x=v, axes=[axis]) for v in outputs)


def _binary_search(ctx, seq: Var, values: Var, go_right, what: str, axis: int = -1) -> Var:
    """For every value, torch's binary search over `seq` along `axis`: start at [0, M), probe the
    middle, and continue right of it where go_right(probe, value) holds. Returns the int32 stop
    position. seq is 1-D (shared by all values) or has values' rank with equal dims off `axis`.

    A finished search (start == end) must not move: the probe is clamped into range and start to end."""
    axis %= rank(seq)
    m = _static_size(ctx, seq, axis, what)
    if m == 0:
        raise ctx.unsupported(f"{what}: searching an empty sequence")
    shared = rank(seq) == 1
    scalar = rank(values) == 0
    if scalar:  # searched as a one-element vector: coremltools mistypes gathers at a 0-d index
        values = ctx.b.op("expand_dims", x=values, axes=[0])
    start, end = 0, m
    for _ in range(m.bit_length()):
        mid = _int(ctx, "floor_div", _int(ctx, "add", start, end), 2)
        probe_at = _int(ctx, "minimum", mid, m - 1)
        if not isinstance(probe_at, Var):
            # First step: one position for every value; a size-1 axis broadcasts against the values.
            probe = ctx.b.op("gather", x=seq, indices=[probe_at], axis=axis)
        elif shared:
            probe = ctx.b.op("gather", x=seq, indices=probe_at, axis=0)
        else:
            probe = ctx.b.op("gather_along_axis", x=seq, indices=probe_at, axis=axis)
        right = go_right(probe, values)
        start, end = (select(ctx, right, _int(ctx, "minimum", _int(ctx, "add", mid, 1), end), start),
                      select(ctx, right, end, mid))
    return ctx.b.op("squeeze", x=start, axes=[0]) if scalar else start


def _torch_bound(ctx, right: bool):
    """torch's step rule: go right unless probe >= value (probe > value for the upper bound). Written
    as a negation, so a NaN probe or value sends the search right exactly as in torch."""
    mil_op = "greater" if right else "greater_equal"
    return lambda probe, value: ctx.b.op("logical_not", x=ctx.b.op(mil_op, x=probe, y=value))


def _below(ctx):
    """Go right while probe < value: a NaN probe counts as above every value (it sorts last)."""
    return lambda probe, value: ctx.b.op("less", x=probe, y=value)


def _common(ctx, a, b) -> list[Var]:
    return ctx.promote(a, b, dtype=numeric_dtype(ctx, a, b))


# -- order statistics ------------------------------------------------------------------------------

@lowering(aten.kthvalue.default)
def kthvalue(ctx, self, k, dim=-1, keepdim=False):
    """kthvalue(Tensor self, SymInt k, int dim=-1, bool keepdim=False) -> (Tensor values, Tensor indices)

    The k-th smallest value (NaN ranks above every number)."""
    if not isinstance(k, int):
        raise ctx.unsupported("kthvalue with a dynamic k (MIL's topk needs a constant k)")
    x, axis = _reduced_axis(ctx, to_numeric(ctx, self), dim, "kthvalue")
    size = x.shape[axis]
    if k < 1 or (isinstance(size, int) and k > size):
        raise ctx.unsupported(f"kthvalue: k={k} is out of range for a dim of size {size}")
    values, indices = ctx.b.op("topk", x=x, k=k, axis=axis, ascending=True)
    picked = [ctx.b.op("gather", x=v, indices=[k - 1], axis=axis) for v in (values, indices)]
    values, indices = _finish_reduced(ctx, picked, axis, keepdim, rank(self) == 0)
    return ctx.cast(values, self.dtype), indices


def _median(ctx, self, dim, keepdim, ignore_nan: bool, what: str):
    """The lower median along dim and its index. torch's median returns NaN (the first NaN's index)
    for a row holding one; nanmedian takes the lower median of the row's numbers (for a row of NaNs,
    NaN; torch's index there is implementation-defined, this gives the first). Sorted stably with
    NaN last, both are one position in the sorted row."""
    x, axis = _reduced_axis(ctx, to_numeric(ctx, self), dim, what)
    n = _size(ctx, x, axis)
    order = ctx.b.op("argsort", x=x, axis=axis, ascending=True)
    if x.dtype.is_float:
        is_nan = ctx.cast(ctx.b.op("not_equal", x=x, y=x), dt.int32)
        nans = ctx.b.op("reduce_sum", x=is_nan, axes=[axis], keep_dims=True)
        numbers = _int(ctx, "sub", n, nans)
        if ignore_nan:
            position = _int(ctx, "maximum", _int(ctx, "floor_div", _int(ctx, "sub", numbers, 1), 2), 0)
        else:
            position = select(ctx, binary(ctx, "greater", nans, 0), numbers,
                              _int(ctx, "floor_div", _int(ctx, "sub", n, 1), 2))
        index = ctx.b.op("gather_along_axis", x=order, indices=position, axis=axis)
    else:  # integers hold no NaN: one position for every row
        position = _int(ctx, "floor_div", _int(ctx, "sub", n, 1), 2)
        index = ctx.b.op("gather", x=order, indices=position if isinstance(position, Var) else [position],
                         axis=axis)
    values = ctx.b.op("gather_along_axis", x=x, indices=index, axis=axis)
    values, index = _finish_reduced(ctx, (values, index), axis, keepdim, rank(self) == 0)
    return ctx.cast(values, self.dtype), index


def _flat(ctx, x: Var) -> Var:
    return ctx.b.op("reshape", x=x, shape=[-1])


@lowering(aten.median.default)
def median(ctx, self):
    """median(Tensor self) -> Tensor

    The lower of the two middle values (not their mean); NaN if there is a NaN."""
    values, _ = _median(ctx, _flat(ctx, self), 0, False, False, "median")
    return ctx.cast(values, self.dtype)


@lowering(aten.median.dim)
def median_dim(ctx, self, dim, keepdim=False):
    """median.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)"""
    return _median(ctx, self, dim, keepdim, False, "median")


@lowering(aten.nanmedian.default)
def nanmedian(ctx, self):
    """nanmedian(Tensor self) -> Tensor

    The lower median of the values that are not NaN; NaN when all are."""
    values, _ = _median(ctx, _flat(ctx, self), 0, False, True, "nanmedian")
    return ctx.cast(values, self.dtype)


@lowering(aten.nanmedian.dim)
def nanmedian_dim(ctx, self, dim, keepdim=False):
    """nanmedian.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)"""
    return _median(ctx, self, dim, keepdim, True, "nanmedian")


@lowering(aten.mode.default)
def mode(ctx, self, dim=-1, keepdim=False):
    """mode(Tensor self, int dim=-1, bool keepdim=False) -> (Tensor values, Tensor indices)

    The most frequent value, the smallest one among equally frequent values, and the index of its
    last occurrence (torch's choice for small rows; for ties torch's index is implementation-defined).
    In the sorted row a value's count is the distance between its lower and upper bound; the first
    position with the highest count is the smallest such value. NaN equals nothing, so a NaN counts
    once (torch's answer with NaNs depends on its sort's order)."""
    x, axis = _reduced_axis(ctx, to_numeric(ctx, self), dim, "mode")
    order = ctx.b.op("argsort", x=x, axis=axis, ascending=True)
    ordered = ctx.b.op("gather_along_axis", x=x, indices=order, axis=axis)
    lower = _binary_search(ctx, ordered, ordered, _torch_bound(ctx, False), "mode", axis)
    upper = _binary_search(ctx, ordered, ordered, _torch_bound(ctx, True), "mode", axis)
    counts = binary(ctx, "maximum", ctx.b.op("sub", x=upper, y=lower), 1, dt.int32)
    first = ctx.b.op("reduce_argmax", x=counts, axis=axis, keep_dims=True)
    count = ctx.b.op("gather_along_axis", x=counts, indices=first, axis=axis)
    last = binary(ctx, "sub", ctx.b.op("add", x=first, y=count), 1, dt.int32)
    values = ctx.b.op("gather_along_axis", x=ordered, indices=first, axis=axis)
    index = ctx.b.op("gather_along_axis", x=order, indices=last, axis=axis)
    values, index = _finish_reduced(ctx, (values, index), axis, keepdim, rank(self) == 0)
    return ctx.cast(values, self.dtype), index


# -- searching -------------------------------------------------------------------------------------

def _search_sorted(ctx, sequence, values, right: bool, what: str, sorter=None) -> Var:
    seq, values = _common(ctx, sequence, values)
    if sorter is not None:
        seq = ctx.b.op("gather_along_axis", x=seq, indices=ctx.cast(sorter, dt.int32), axis=-1)
    if rank(seq) == 0:
        raise ctx.unsupported(f"{what} into a 0-d sequence (torch requires at least one dim)")
    if rank(seq) > 1 and rank(values) != rank(seq):
        raise ctx.unsupported(f"{what}: an N-d sorted_sequence needs values of the same rank "
                              f"(got ranks {rank(seq)} and {rank(values)})")
    return _binary_search(ctx, seq, values, _torch_bound(ctx, right), what)


@lowering(aten.searchsorted.Tensor, aten.searchsorted.Scalar)
def searchsorted(ctx, sorted_sequence, self, out_int32=False, right=False, side=None, sorter=None):
    """searchsorted.Tensor(Tensor sorted_sequence, Tensor self, *, bool out_int32=False,
    bool right=False, str? side=None, Tensor? sorter=None) -> Tensor

    int64 and int32 indices are both MIL int32."""
    if side not in (None, "left", "right"):
        raise ctx.unsupported(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if side == "left" and right:
        raise ctx.unsupported("searchsorted: side='left' contradicts right=True (torch rejects it)")
    return _search_sorted(ctx, sorted_sequence, self, right or side == "right", "searchsorted", sorter)


@lowering(aten.bucketize.Tensor, aten.bucketize.Scalar)
def bucketize(ctx, self, boundaries, out_int32=False, right=False):
    """bucketize.Tensor(Tensor self, Tensor boundaries, *, bool out_int32=False, bool right=False) -> Tensor"""
    if rank(boundaries) != 1:
        raise ctx.unsupported(f"bucketize: boundaries must be 1-d, got rank {rank(boundaries)}")
    return _search_sorted(ctx, boundaries, self, right, "bucketize")


# Up to this many comparisons (elements x test elements), isin compares every pair at once; beyond,
# it sorts the test elements and binary-searches them, which needs O(N log T) instead of O(N T) memory.
_ISIN_PAIRWISE = 1 << 16


@lowering(aten.isin.Tensor_Tensor, aten.isin.Tensor_Scalar, aten.isin.Scalar_Tensor)
def isin(ctx, elements=None, test_elements=None, assume_unique=False, invert=False, element=None,
         test_element=None):
    """isin.Tensor_Tensor(Tensor elements, Tensor test_elements, *, bool assume_unique=False,
    bool invert=False) -> Tensor

    Kept whole: torch's decomposition sorts and searches even for a few test elements."""
    elements = element if elements is None else elements
    tests = test_element if test_elements is None else test_elements
    x, tests = _common(ctx, elements, tests)
    if rank(tests) == 0:
        found = ctx.b.op("equal", x=x, y=tests)
    else:
        tests = _flat(ctx, tests)
        t = tests.shape[0]
        n = math.prod(x.shape) if all(isinstance(d, int) for d in x.shape) else None
        if not isinstance(t, int) or (n is not None and n * t <= _ISIN_PAIRWISE):
            pairs = ctx.b.op("equal", x=ctx.b.op("expand_dims", x=x, axes=[-1]), y=tests)
            hits = ctx.b.op("reduce_max", x=ctx.cast(pairs, dt.int32), axes=[-1], keep_dims=False)
            found = ctx.cast(hits, dt.bool_)
        else:
            # The lower bound of each element among the sorted test elements, then one comparison;
            # NaN test elements sort last and stay out of the way, a NaN element matches nothing.
            ordered = ctx.b.op("gather", x=tests, indices=ctx.b.op("argsort", x=tests, axis=0, ascending=True),
                               axis=0)
            at = _binary_search(ctx, ordered, x, _below(ctx), "isin")
            probe = ctx.b.op("gather", x=ordered, indices=binary(ctx, "minimum", at, t - 1, dt.int32), axis=0)
            found = ctx.b.op("equal", x=probe, y=x)
    return ctx.b.op("logical_not", x=found) if invert else found


# -- histograms ------------------------------------------------------------------------------------

def _float_const(ctx, value) -> Var:
    return ctx.promote(float(value), dtype=ctx.float_dtype)[0]


def _check_range(ctx, low: float, high: float, what: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ctx.unsupported(f"{what}: the range [{low}, {high}] is not finite (torch rejects it)")
    if low > high:
        raise ctx.unsupported(f"{what}: min {low} exceeds max {high} (torch rejects it)")


def _data_range(ctx, x: Var, widen: float) -> tuple[Var, Var]:
    """The data's min and max, moved `widen` apart when equal. (torch rejects NaN data here; NaN
    bounds bin nothing.)"""
    low = ctx.b.op("reduce_min", x=x, axes=[0], keep_dims=True)
    high = ctx.b.op("reduce_max", x=x, axes=[0], keep_dims=True)
    same = ctx.b.op("equal", x=low, y=high)
    return (select(ctx, same, binary(ctx, "sub", low, widen), low),
            select(ctx, same, binary(ctx, "add", high, widen), high))


def _linspace(ctx, low, high, bins: int) -> Var:
    """torch.linspace(low, high, bins + 1) in the program's float type. Constant edges are torch's own,
    bit for bit (its CPU kernel fuses each multiply-add, which MIL cannot); edges known only at run
    time follow the same recipe, the first half counting up from low and the second half down from
    high so both ends are exact, with an unfused multiply-add (at most an ulp apart)."""
    if not isinstance(low, Var):
        edges = torch.linspace(low, high, bins + 1, dtype=torch.float32).numpy()
        return ctx.const(edges.astype(ctx.float_dtype.numpy), ctx.float_dtype)
    half = (bins + 1) // 2
    step = binary(ctx, "real_div", ctx.b.op("sub", x=high, y=low), float(bins))
    up = ctx.const(np.arange(half).astype(ctx.float_dtype.numpy), ctx.float_dtype)
    down = ctx.const(np.arange(bins - half, -1, -1).astype(ctx.float_dtype.numpy), ctx.float_dtype)
    first = ctx.b.op("add", x=low, y=ctx.b.op("mul", x=step, y=up))
    second = ctx.b.op("sub", x=high, y=ctx.b.op("mul", x=step, y=down))
    return ctx.b.op("concat", values=[first, second], axis=0)


def _within(ctx, x: Var, low: Var, high: Var) -> Var:
    """low <= x <= high; false for NaN (such elements fall in no bin)."""
    return ctx.b.op("logical_and", x=ctx.b.op("greater_equal", x=x, y=low),
                    y=ctx.b.op("less_equal", x=x, y=high))


def _accumulate(ctx, bin_of: Var, inside: Var, bins: int, weight: Var | None) -> Var:
    """Per-bin sums: 1 (counted exactly in int32) or the element's weight for every element inside
    the range. Elements outside add 0 to a valid bin, so every index stays in range."""
    if weight is None:
        zeros, updates = ctx.const(np.zeros(bins, np.int32), dt.int32), ctx.cast(inside, dt.int32)
    else:
        zeros = ctx.const(np.zeros(bins, ctx.float_dtype.numpy), ctx.float_dtype)
        updates = select(ctx, inside, ctx.cast(_flat(ctx, to_float(ctx, weight)), ctx.float_dtype), 0.0)
    hist = ctx.b.op("scatter", data=zeros, indices=bin_of, updates=updates, axis=0, mode="add")
    return ctx.cast(hist, ctx.float_dtype)


@lowering(aten.histc.default)
def histc(ctx, self, bins=100, min=0, max=0):  # noqa: A002 - the schema's names
    """histc(Tensor self, int bins=100, Scalar min=0, Scalar max=0) -> Tensor

    min == max means the data's range (widened by 1 each way if flat). As in torch, the bin is
    (x - min) * bins / (max - min) truncated, computed in that order, and x == max is in the last bin."""
    if bins <= 0:
        raise ctx.unsupported(f"histc: bins must be positive, got {bins}")
    x = _flat(ctx, to_float(ctx, self))
    if float(min) == float(max):
        low, high = _data_range(ctx, x, 1.0)
    else:
        _check_range(ctx, float(min), float(max), "histc")
        low, high = _float_const(ctx, min), _float_const(ctx, max)
    inside = _within(ctx, x, low, high)
    x = select(ctx, inside, x, low)  # NaN and far-out values would make the bin index meaningless
    scaled = ctx.b.op("real_div", x=binary(ctx, "mul", ctx.b.op("sub", x=x, y=low), float(bins)),
                      y=ctx.b.op("sub", x=high, y=low))
    bin_of = binary(ctx, "minimum", ctx.cast(ctx.b.op("floor", x=scaled), dt.int32), bins - 1, dt.int32)
    return _accumulate(ctx, bin_of, inside, bins, None)


def _histogram(ctx, self: Var, edges: Var, weight, density: bool):
    """The histogram of self's elements over sorted `edges`: an element's bin is the last edge <= it,
    the last bin also takes the rightmost edge itself (torch's upper-bound search)."""
    bins = _static_size(ctx, edges, 0, "histogram") - 1
    if bins < 1:
        raise ctx.unsupported("histogram: bins needs at least two edges")
    if weight is not None and tuple(weight.shape) != tuple(self.shape):
        raise ctx.unsupported(f"histogram: weight of shape {tuple(weight.shape)} for an input of shape "
                              f"{tuple(self.shape)} (torch requires equal shapes)")
    x = _flat(ctx, to_float(ctx, self))
    inside = _within(ctx, x, ctx.b.op("gather", x=edges, indices=[0], axis=0),
                     ctx.b.op("gather", x=edges, indices=[bins], axis=0))
    after = _binary_search(ctx, edges, x, _torch_bound(ctx, True), "histogram")
    bin_of = binary(ctx, "maximum", binary(ctx, "minimum", binary(ctx, "sub", after, 1, dt.int32),
                                           bins - 1, dt.int32), 0, dt.int32)
    hist = _accumulate(ctx, bin_of, inside, bins, weight)
    if density:
        # torch divides by the total first, then by each bin's width.
        total = ctx.b.op("reduce_sum", x=hist, axes=[0], keep_dims=True)
        widths = ctx.b.op("sub", x=ctx.b.op("slice_by_index", x=edges, begin=[1], end=[bins + 1]),
                          y=ctx.b.op("slice_by_index", x=edges, begin=[0], end=[bins]))
        hist = ctx.b.op("real_div", x=ctx.b.op("real_div", x=hist, y=total), y=widths)
    return hist, edges


@lowering(aten.histogram.bin_ct)
def histogram(ctx, self, bins=100, range=None, weight=None, density=False):  # noqa: A002
    """histogram.bin_ct(Tensor self, int bins=100, *, float[]? range=None, Tensor? weight=None,
    bool density=False) -> (Tensor hist, Tensor bin_edges)

    Equal-width bins over `range`, or the data's range; a flat range is widened by 0.5 each way."""
    if bins <= 0:
        raise ctx.unsupported(f"histogram: bins must be positive, got {bins}")
    if range is not None:
        low, high = (float(v) for v in range)
        _check_range(ctx, low, high, "histogram")
        if low == high:
            low, high = low - 0.5, high + 0.5
    else:
        low, high = _data_range(ctx, _flat(ctx, to_float(ctx, self)), 0.5)
    return _histogram(ctx, self, _linspace(ctx, low, high, bins), weight, density)


@lowering(aten.histogram.bins_tensor)
def histogram_bins(ctx, self, bins, weight=None, density=False):
    """histogram.bins_tensor(Tensor self, Tensor bins, *, Tensor? weight=None, bool density=False)
    -> (Tensor hist, Tensor bin_edges)

    `bins` holds the (increasing) edges, rightmost included."""
    if rank(bins) != 1:
        raise ctx.unsupported(f"histogram: bins must be a 1-d tensor of edges, got rank {rank(bins)}")
    return _histogram(ctx, self, to_float(ctx, bins), weight, density)
