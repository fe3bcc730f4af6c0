"""Ordering: sort, argsort and topk on MIL `argsort` / `topk` (+ `gather_along_axis`).

MIL ranks ints as int32; bools are ranked as 0/1 ints and cast back.
"""

from __future__ import annotations

import torch

from ..registry import lowering
from ._nn_helpers import rank, to_numeric

aten = torch.ops.aten


def _axis(ctx, x, dim):
    if rank(x) == 0:
        raise ctx.unsupported("ordering a 0-d tensor")
    return dim % rank(x)


@lowering(aten.sort.default, aten.sort.stable)
def sort(ctx, self, dim=-1, descending=False, stable=False):
    """sort.stable(Tensor self, *, bool? stable, int dim=-1, bool descending=False)
    -> (Tensor values, Tensor indices)

    The catalogue's argsort breaks ties by position, which satisfies `stable`."""
    x = to_numeric(ctx, self)
    axis = _axis(ctx, x, dim)
    order = ctx.b.op("argsort", x=x, axis=axis, ascending=not descending)
    values = ctx.b.op("gather_along_axis", x=x, indices=order, axis=axis)
    return ctx.cast(values, self.dtype), order


@lowering(aten.argsort.default, aten.argsort.stable)
def argsort(ctx, self, dim=-1, descending=False, stable=False):
    """argsort.stable(Tensor self, *, bool stable, int dim=-1, bool descending=False) -> Tensor

    Kept whole: one MIL op instead of a sort whose values are discarded."""
    x = to_numeric(ctx, self)
    return ctx.b.op("argsort", x=x, axis=_axis(ctx, x, dim), ascending=not descending)


@lowering(aten.topk.default)
def topk(ctx, self, k, dim=-1, largest=True, sorted=True):
    """topk(Tensor self, SymInt k, int dim=-1, bool largest=True, bool sorted=True)
    -> (Tensor values, Tensor indices)

    Results always come sorted, which also satisfies sorted=False."""
    if not isinstance(k, int):
        raise ctx.unsupported("topk with a dynamic k (MIL needs a constant k)")
    x = to_numeric(ctx, self)
    values, indices = ctx.b.op("topk", x=x, k=k, axis=_axis(ctx, x, dim), ascending=not largest)
    return ctx.cast(values, self.dtype), indices
