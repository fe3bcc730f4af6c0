"""Small helpers shared by the nn compute families (linear, conv, pool, norm, reductions, ...)."""

from __future__ import annotations

import operator
from typing import Sequence

import torch

from ...mil import dtypes as dt
from ...mil.program import Var


def rank(x: Var) -> int:
    return len(x.shape)


def is_static(x: Var) -> bool:
    return all(isinstance(d, int) for d in x.shape)


def normalize_dims(dim, ndim: int) -> list[int]:
    """ATen's `int[1]? dim`: None or [] means every dim; negatives count from the end; sorted."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    if ndim == 0:  # a scalar accepts dim 0 / -1 and reduces nothing
        return []
    return sorted({d % ndim for d in dims})


def output_used(ctx, index: int) -> bool:
    """Whether output `index` of a multi-output node is read. Without a node (a dry run outside a
    graph) we cannot tell, so assume it is."""
    node = ctx.node
    if node is None:
        return True
    for user in node.users:
        if user.target is not operator.getitem or user.args[1] == index:
            return True
    return False


def check_node_shape(ctx, var: Var, index: int | None = None, what: str = "the MIL op") -> Var:
    """Refuse (instead of failing later) when a MIL op's rounding rules give a different static shape
    than torch's metadata, e.g. ceil_mode corner cases."""
    node = ctx.node
    val = node.meta.get("val") if node is not None else None
    if isinstance(val, (tuple, list)) and index is not None:
        val = val[index]
    if not isinstance(val, torch.Tensor):
        return var
    for got, want in zip(var.shape, val.shape):
        # `int()` on a symbolic size would pin it (a guard), so only known-static sizes are compared.
        want = want if isinstance(want, int) else want.node.maybe_as_int()
        if want is None:
            continue
        if isinstance(got, int) and got != want:
            raise ctx.unsupported(f"{what} gives shape {tuple(var.shape)} but torch gives "
                                  f"{tuple(val.shape)}")
    return var


def to_compute_float(ctx, x: Var) -> Var:
    """Ints and bools become the program's float type (for ops that only take floats)."""
    return x if x.dtype.is_float else ctx.cast(x, ctx.float_dtype)


def to_numeric(ctx, x: Var) -> Var:
    """MIL reductions take fp16/fp32/int32: bools compute as int32."""
    return ctx.cast(x, dt.int32) if x.dtype is dt.bool_ else x


def per_channel(ctx, v: Var, ndim: int) -> Var:
    """A [C] vector reshaped to [C, 1, ..., 1] so it broadcasts over x [N, C, *D] of rank ndim."""
    if ndim <= 2:
        return v
    return ctx.b.op("expand_dims", x=v, axes=list(range(1, ndim - 1)))


def prod(items: Sequence[int]) -> int:
    out = 1
    for i in items:
        out *= int(i)
    return out
