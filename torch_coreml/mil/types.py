"""MIL value types: tensors with static or symbolic dims, lists, tuples, dictionaries and states.

A dimension is an `int` or a `Symbol`. Two dims with the same symbol are known to be equal at run time;
a `Symbol` says nothing else. The proto format only records "unknown", so symbols are a compile-time
aid: the reader gives every unknown dimension a fresh symbol.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Union

from . import dtypes as dt

_fresh_counter = itertools.count()


@dataclass(frozen=True)
class Symbol:
    name: str

    @staticmethod
    def fresh(prefix: str = "?") -> "Symbol":
        # Not "s": torch.export names its sizes s0, s77, u0, ..., and the lowering keeps those names,
        # so a fresh "s77" would claim to equal an input's dim.
        return Symbol(f"{prefix}{next(_fresh_counter)}")

    def __repr__(self) -> str:
        return self.name


Dim = Union[int, Symbol]


def is_static_dim(d: Dim) -> bool:
    return isinstance(d, int)


@dataclass(frozen=True)
class TensorType:
    dtype: dt.DType
    shape: tuple[Dim, ...] = ()

    def __post_init__(self):
        shape = tuple(d if isinstance(d, Symbol) else int(d) for d in self.shape)
        object.__setattr__(self, "shape", shape)
        for d in shape:
            if isinstance(d, int) and d < 0:
                raise ValueError(f"negative dimension in shape {shape}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def is_scalar(self) -> bool:
        return not self.shape

    def numel(self) -> int | None:
        if not self.is_static:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_dtype(self, dtype: dt.DType) -> "TensorType":
        return TensorType(dtype, self.shape)

    def with_shape(self, shape) -> "TensorType":
        return TensorType(self.dtype, tuple(shape))

    def __str__(self) -> str:
        return f"tensor<{self.dtype.name}, [{', '.join(str(d) for d in self.shape)}]>"


@dataclass(frozen=True)
class ListType:
    elem: TensorType
    length: Dim | None = None  # None: grows at run time

    def __str__(self) -> str:
        return f"list<{self.elem}, {'?' if self.length is None else self.length}>"


@dataclass(frozen=True)
class TupleType:
    types: tuple

    def __str__(self) -> str:
        return f"tuple<{', '.join(str(t) for t in self.types)}>"


@dataclass(frozen=True)
class DictType:
    key: "ValueType"
    value: "ValueType"

    def __str__(self) -> str:
        return f"dict<{self.key}, {self.value}>"


@dataclass(frozen=True)
class StateType:
    wrapped: TensorType

    def __str__(self) -> str:
        return f"state<{self.wrapped}>"


ValueType = Union[TensorType, ListType, TupleType, DictType, StateType]


def tensor(dtype: dt.DType | str, shape=()) -> TensorType:
    """Shorthand: `tensor("fp32", (1, 3))`."""
    if isinstance(dtype, str):
        dtype = dt.from_name(dtype)
    return TensorType(dtype, tuple(shape))


def dims_equal(a: Dim, b: Dim) -> bool:
    return a == b


def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """Numpy broadcasting over possibly symbolic dims; raises ValueError on a static mismatch."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        result: Dim = 1
        for d in dims:
            if d == 1:
                continue
            if result == 1:
                result = d
            elif result != d:
                if isinstance(result, int) and isinstance(d, int):
                    raise ValueError(f"shapes {shapes} do not broadcast (dim {i}: {result} vs {d})")
                # A static dim wins over a symbol (the symbol must be 1 or equal); two different
                # symbols give an unknown result, since either may be 1 at run time.
                if isinstance(d, int):
                    result = d
                elif not isinstance(result, int):
                    result = Symbol.fresh()
        out.append(result)
    return tuple(out)
