"""Type-inference helpers shared by op families."""

from __future__ import annotations

from typing import Sequence

from .. import dtypes as dt
from ..types import Dim, Symbol, TensorType, broadcast_shapes


def same_as(name: str):
    """The output has the type of input `name`."""
    return lambda ctx: ctx.type(name)


def same_shape(name: str, dtype: dt.DType):
    """The output has the shape of input `name` and a fixed dtype (comparisons → bool)."""
    return lambda ctx: TensorType(dtype, ctx.shape(name))


def broadcast(*names: str, dtype: dt.DType | None = None):
    """Numpy-broadcast the shapes of `names`; dtype from the first input unless given."""

    def infer(ctx):
        shapes = [ctx.shape(n) for n in names if ctx.has(n)]
        try:
            shape = broadcast_shapes(*shapes)
        except ValueError as e:
            raise ctx.error(str(e)) from None
        return TensorType(dtype or ctx.dtype(names[0]), shape)

    return infer


def normalize_axis(ctx, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def normalize_axes(ctx, axes: Sequence[int], rank: int) -> list[int]:
    return [normalize_axis(ctx, a, rank) for a in axes]


def fresh_dims(n: int) -> tuple[Dim, ...]:
    return tuple(Symbol.fresh() for _ in range(n))


def shape_from_value(ctx, name: str) -> tuple[Dim, ...]:
    """A shape given as a tensor input: static values when known, else fresh symbols per entry."""
    value = ctx.value(name)
    if value is not None:
        return tuple(int(v) for v in value.reshape(-1))
    (n,) = ctx.shape(name)
    if not isinstance(n, int):
        raise ctx.error(f"input {name!r} has a rank that is not known at compile time")
    return fresh_dims(n)
