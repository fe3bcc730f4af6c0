"""MIL tensor-transformation ops, part 2: slicing (`slice_by_index`, `slice_by_size`) and the iOS18
`slice_update`, which writes into the region `slice_by_index` would read.

Slices follow Python's rules: out-of-range bounds clamp, negative bounds count from the end, and a
negative stride walks backwards.
"""

from __future__ import annotations

import torch

from ..targets import Target
from ..types import Symbol, TensorType
from .infer import fresh_dims
from .spec import In, mil_op
from .tensor_transformation import BOOL, I32, IDX17, T15, T17, int_values, vector_len


def _masks(ctx, rank: int) -> dict:
    out = {}
    for name, default in (("stride", 1), ("begin_mask", False), ("end_mask", False), ("squeeze_mask", False)):
        v = ctx.value(name)
        vals = [default] * rank if v is None else [x.item() for x in v.reshape(-1)]
        if len(vals) != rank:
            raise ctx.error(f"input {name!r} has {len(vals)} entries, x has rank {rank}")
        out[name] = vals
    if 0 in out["stride"]:
        raise ctx.error(f"input 'stride' {out['stride']} must not contain 0")
    return out


def _fixed_length(b, e, s, begin_mask, end_mask):
    """A slice length that does not depend on the (unknown) dim size, assuming the slice is in range."""
    if not begin_mask and not end_mask and b is not None and e is not None:
        if b >= 0 and e >= 0 and s > 0:
            n = max(0, -(-(e - b) // s))
        elif b < 0 and e < 0 and s < 0:
            n = max(0, -(-(b - e) // -s))
        else:
            return None
        return n if n in (0, 1) else None
    if not begin_mask and end_mask and b is not None and ((b == 0 and s < 0) or (b == -1 and s > 0)):
        return 1
    return None


def slice_shape(ctx, x_shape: tuple) -> list:
    """Output dims of slice_by_index (also the region slice_update writes)."""
    rank = len(x_shape)
    for name in ("begin", "end"):
        if vector_len(ctx, name) != rank:
            raise ctx.error(f"input {name!r} must have rank(x) = {rank} entries, got {ctx.type(name)}")
    m = _masks(ctx, rank)
    begin, end = int_values(ctx, "begin"), int_values(ctx, "end")
    out = []
    for i, d in enumerate(x_shape):
        if m["squeeze_mask"][i]:
            continue
        s, bm, em = m["stride"][i], m["begin_mask"][i], m["end_mask"][i]
        b = None if bm or begin is None else begin[i]
        e = None if em or end is None else end[i]
        known = (bm or begin is not None) and (em or end is not None)
        if known and isinstance(d, int):
            out.append(len(range(*slice(b, e, s).indices(d))))
        elif known and e is None and abs(s) == 1 and b in (None, 0 if s > 0 else -1):
            out.append(d)  # the whole dim, in either direction
        else:
            n = _fixed_length(b, e, s, bm, em)
            out.append(n if n is not None else 1 if d == 1 else Symbol.fresh())
    return out


def slice_ranges(shape, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    """Per dim, the int64 positions a slice selects; squeezed dims select the one position begin[i]."""
    rank = len(shape)
    stride = [1] * rank if stride is None else stride
    begin_mask = [False] * rank if begin_mask is None else begin_mask
    end_mask = [False] * rank if end_mask is None else end_mask
    squeeze_mask = [False] * rank if squeeze_mask is None else squeeze_mask
    ranges = []
    for i, d in enumerate(shape):
        if squeeze_mask[i]:
            b = 0 if begin_mask[i] else begin[i]
            ranges.append(torch.tensor([b + d if b < 0 else b]))
            continue
        sl = slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i])
        ranges.append(torch.arange(*sl.indices(d)))
    squeezed = tuple(i for i in range(rank) if squeeze_mask[i])
    # Open-mesh index: range i varies along dim i only, so x[mesh] is the sliced block.
    mesh = tuple(r.reshape([-1 if j == i else 1 for j in range(rank)]) for i, r in enumerate(ranges))
    return mesh, squeezed


def _slice_by_index_type(ctx):
    return TensorType(ctx.dtype("x"), tuple(slice_shape(ctx, ctx.shape("x"))))


def _slice_inputs(index_types, with_update=False):
    head = [In("x", "T")] + ([In("update", "T")] if with_update else [])
    return head + [In("begin", index_types), In("end", index_types),
                   In("stride", index_types, const=True, optional=True, param=True),
                   In("begin_mask", BOOL, const=True, optional=True, param=True),
                   In("end_mask", BOOL, const=True, optional=True, param=True),
                   In("squeeze_mask", BOOL, const=True, optional=True, param=True)]


@mil_op("slice_by_index", since=Target.iOS17, domains={"T": T17, "U": IDX17}, inputs=_slice_inputs("U"),
        infer=_slice_by_index_type)
@mil_op("slice_by_index", domains={"T": T15}, inputs=_slice_inputs(I32), infer=_slice_by_index_type)
def slice_by_index(x, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    """x[begin[0]:end[0]:stride[0], ...] per dim (stride defaults to 1). begin_mask[i] / end_mask[i]
    ignore begin[i] / end[i] and take the dim from its start / to its end; squeeze_mask[i] picks the
    single position begin[i] and drops the dim."""
    if x.dim() == 0:
        return x
    mesh, squeezed = slice_ranges(tuple(x.shape), begin.reshape(-1).tolist(), end.reshape(-1).tolist(),
                                  stride, begin_mask, end_mask, squeeze_mask)
    out = x[mesh]
    return out.squeeze(squeezed) if squeezed else out


def _slice_update_type(ctx):
    want = slice_shape(ctx, ctx.shape("x"))
    got = ctx.shape("update")
    if not got:
        raise ctx.error("input 'update' must not be a scalar")
    if len(want) != len(got) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                    for a, b in zip(want, got)):
        raise ctx.error(f"input 'update' has shape {list(got)}, the slice has shape {want}")
    return ctx.type("x")


@mil_op("slice_update", since=Target.iOS18, domains={"T": T17, "U": IDX17},
        inputs=_slice_inputs("U", with_update=True), infer=_slice_update_type)
def slice_update(x, update, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    """A copy of x whose slice (chosen exactly as in slice_by_index) is replaced by `update`."""
    mesh, _ = slice_ranges(tuple(x.shape), begin.reshape(-1).tolist(), end.reshape(-1).tolist(),
                           stride, begin_mask, end_mask, squeeze_mask)
    out = x.clone()
    out[mesh] = update.reshape([len(r.reshape(-1)) for r in mesh]).to(x.dtype)
    return out


def _slice_by_size_type(ctx):
    shape = ctx.shape("x")
    for name in ("begin", "size"):
        if vector_len(ctx, name) != len(shape):
            raise ctx.error(f"input {name!r} must have rank(x) = {len(shape)} entries, got {ctx.type(name)}")
    begin, size = int_values(ctx, "begin"), int_values(ctx, "size")
    if size is None:
        return TensorType(ctx.dtype("x"), fresh_dims(len(shape)))
    out = []
    for i, (d, n) in enumerate(zip(shape, size)):
        if n < -1:
            raise ctx.error(f"input 'size' {size} may only hold sizes >= 0 or -1")
        if n != -1:
            out.append(n)
        elif begin is None:
            out.append(Symbol.fresh())
        elif begin[i] < 0:
            out.append(-begin[i])
        elif isinstance(d, int):
            if begin[i] > d:
                raise ctx.error(f"input 'begin' {begin} is beyond dim {i} of x ({d})")
            out.append(d - begin[i])
        else:
            out.append(d if begin[i] == 0 else Symbol.fresh())
    return TensorType(ctx.dtype("x"), tuple(out))


def _slice_by_size_inputs(index_types):
    return [In("x", "T"), In("begin", index_types), In("size", index_types)]


@mil_op("slice_by_size", since=Target.iOS17, domains={"T": T17, "U": IDX17},
        inputs=_slice_by_size_inputs("U"), infer=_slice_by_size_type)
@mil_op("slice_by_size", domains={"T": T15}, inputs=_slice_by_size_inputs(I32), infer=_slice_by_size_type)
def slice_by_size(x, begin, size):
    """Per dim i, size[i] elements starting at begin[i] (negative begin counts from the end);
    size -1 takes everything from begin[i] on."""
    for i, (b, n) in enumerate(zip(begin.reshape(-1).tolist(), size.reshape(-1).tolist())):
        d = x.shape[i]
        b = b + d if b < 0 else b
        x = x.narrow(i, b, d - b if n == -1 else n)
    return x
