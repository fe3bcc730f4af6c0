"""The MIL program graph: Program → Function → Block → Operation → Var.

Plain data with a little bookkeeping. Ops are built through `Builder` (which type-checks against the
catalogue); passes edit blocks directly with the helpers here. Names are SSA: one name per Var in a
function, nested blocks included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .targets import Target
from .types import TensorType, ValueType


class Var:
    """A value: a function input, a block input, or an op output."""

    __slots__ = ("name", "type", "op", "block")

    def __init__(self, name: str, type: ValueType, op: "Operation | None" = None):
        self.name = name
        self.type = type
        self.op = op  # producer; None for function and block inputs
        self.block: Block | None = None  # set for block inputs

    @property
    def value(self) -> Any:
        """The compile-time value when this Var is the output of a `const` op, else None."""
        if self.op is not None and self.op.op_type == "const":
            return self.op.attributes["val"]
        return None

    @property
    def is_const(self) -> bool:
        return self.op is not None and self.op.op_type == "const"

    @property
    def dtype(self):
        return getattr(self.type, "dtype", None)

    @property
    def shape(self):
        return getattr(self.type, "shape", None)

    @property
    def rank(self) -> int:
        return len(self.type.shape)

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


# An op input binds one Var, or a list of Vars for variadic parameters (e.g. concat's `values`).
Binding = "Var | list[Var]"


class Operation:
    __slots__ = ("op_type", "name", "inputs", "outputs", "blocks", "attributes", "block")

    def __init__(self, op_type: str, name: str, inputs: dict[str, Any], outputs: list[Var],
                 blocks: list["Block"] | None = None, attributes: dict[str, Any] | None = None):
        self.op_type = op_type
        self.name = name
        self.inputs: dict[str, Var | list[Var]] = inputs
        self.outputs = outputs
        self.blocks = blocks or []
        self.attributes = attributes or {}
        self.block: Block | None = None  # the block containing this op
        for v in outputs:
            v.op = self

    def input_vars(self) -> Iterator[Var]:
        for b in self.inputs.values():
            if isinstance(b, list):
                yield from b
            else:
                yield b

    def __repr__(self) -> str:
        return f"<{self.op_type} {self.name}>"


class Block:
    def __init__(self, inputs: list[Var] | None = None):
        self.inputs: list[Var] = list(inputs or [])
        for v in self.inputs:
            v.block = self
        self.operations: list[Operation] = []
        self.outputs: list[Var] = []
        self.parent: Operation | None = None  # the op owning this nested block

    def append(self, op: Operation) -> None:
        op.block = self
        self.operations.append(op)

    def insert_before(self, anchor: Operation, op: Operation) -> None:
        op.block = self
        self.operations.insert(self.operations.index(anchor), op)

    def remove(self, op: Operation) -> None:
        self.operations.remove(op)
        op.block = None

    def walk(self) -> Iterator[Operation]:
        """Every op in this block and its nested blocks, in program order."""
        for op in self.operations:
            yield op
            for b in op.blocks:
                yield from b.walk()

    def replace_uses(self, old: Var, new: Var) -> None:
        """Point every use of `old` in this block tree (and its outputs) at `new`."""
        for op in self.walk():
            for key, b in op.inputs.items():
                if isinstance(b, list):
                    op.inputs[key] = [new if v is old else v for v in b]
                elif b is old:
                    op.inputs[key] = new
        for blk in self._blocks():
            blk.outputs = [new if v is old else v for v in blk.outputs]

    def _blocks(self) -> Iterator["Block"]:
        yield self
        for op in self.operations:
            for b in op.blocks:
                yield from b._blocks()


@dataclass
class Function:
    name: str
    inputs: list[Var]
    block: Block
    target: Target

    @property
    def opset(self) -> str:
        return self.target.opset

    def input_named(self, name: str) -> Var:
        for v in self.inputs:
            if v.name == name:
                return v
        raise KeyError(name)


@dataclass
class Program:
    functions: dict[str, Function] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    def add(self, fn: Function) -> Function:
        if fn.name in self.functions:
            raise ValueError(f"program already has a function {fn.name!r}")
        self.functions[fn.name] = fn
        return fn

    @property
    def main(self) -> Function:
        if "main" in self.functions:
            return self.functions["main"]
        if len(self.functions) == 1:
            return next(iter(self.functions.values()))
        raise KeyError("program has several functions and none is called 'main'")

    def __str__(self) -> str:
        from .printer import format_program

        return format_program(self)


def const_array(value: Any) -> np.ndarray:
    """The numpy form of a const value (python scalars and lists included)."""
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def is_tensor(v: Var) -> bool:
    return isinstance(v.type, TensorType)
