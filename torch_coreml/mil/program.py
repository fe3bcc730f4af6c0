"""The MIL program graph: Program → Function → Block → Operation → Var.

Plain data with a little bookkeeping. Ops are built through `Builder` (which type-checks against the
catalogue); passes edit blocks directly with the helpers here. Names are SSA: one name per Var in a
function, nested blocks included.

Every Var keeps its own use list: which ops read it and which blocks return it. That is what makes
`replace_uses` and use counts cost the number of uses instead of a walk over the whole function, so
the passes stay linear on programs of many thousands of ops. The list is kept current by the
containers themselves: an op's `inputs` dict, a variadic binding inside it and a block's `outputs`
list all report their changes, and an op's reads count from the moment a block takes it in
(`append`, `insert_before`) until `remove` lets it go. Plain assignment and the usual dict / list
methods are all tracked; the one rule is that ops enter and leave blocks through those methods.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from .targets import Target
from .types import TensorType, ValueType


class Var:
    """A value: a function input, a block input, or an op output."""

    __slots__ = ("name", "type", "op", "block", "_uses")

    def __init__(self, name: str, type: ValueType, op: "Operation | None" = None):
        self.name = name
        self.type = type
        self.op = op  # producer; None for function and block inputs
        self.block: Block | None = None  # set for block inputs
        # user → how many times it uses this Var: an Operation reading it (once per binding), or a
        # Block returning it. Users in any block tree; queries filter by the tree they ask about.
        self._uses: dict[Operation | Block, int] = {}

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


def _count(user, bindings: Iterable, delta: int) -> None:
    """Add `delta` uses by `user` to every Var in `bindings` (Vars, or lists of Vars)."""
    for b in bindings:
        for v in (b if isinstance(b, list) else (b,)):
            if isinstance(v, Var):
                n = v._uses.get(user, 0) + delta
                if n > 0:
                    v._uses[user] = n
                else:
                    v._uses.pop(user, None)


class _TrackedList(list):
    """A list of Vars whose owner (a Block's outputs, or an op's variadic binding) counts as their user.

    Copies, slices and pickles are plain lists: only the owner's own list reports uses."""

    __slots__ = ("_owner",)

    def __init__(self, owner, items: Iterable = ()):
        super().__init__(items)
        self._owner = owner

    def _note(self, items, delta: int) -> None:
        if self._owner is not None:
            self._owner._note_uses(items, delta)

    def __setitem__(self, index, value):
        old = self[index]
        if isinstance(index, slice):
            value = list(value)
            super().__setitem__(index, value)
            self._note(old, -1)
            self._note(value, 1)
        else:
            super().__setitem__(index, value)
            self._note((old,), -1)
            self._note((value,), 1)

    def __delitem__(self, index):
        old = self[index]
        super().__delitem__(index)
        self._note(old if isinstance(index, slice) else (old,), -1)

    def __iadd__(self, items):
        self.extend(items)
        return self

    def __imul__(self, n):
        old = list(self)
        super().__imul__(n)
        self._note(old, -1)
        self._note(self, 1)
        return self

    def append(self, item) -> None:
        super().append(item)
        self._note((item,), 1)

    def extend(self, items) -> None:
        items = list(items)
        super().extend(items)
        self._note(items, 1)

    def insert(self, index, item) -> None:
        super().insert(index, item)
        self._note((item,), 1)

    def pop(self, index=-1):
        item = super().pop(index)
        self._note((item,), -1)
        return item

    def remove(self, item) -> None:
        index = self.index(item)
        del self[index]

    def clear(self) -> None:
        old = list(self)
        super().clear()
        self._note(old, -1)

    def __reduce_ex__(self, protocol):
        return list, (list(self),)

    def __copy__(self):
        return list(self)


class _Inputs(dict):
    """An op's input bindings; every change is reported to the bound Vars' use lists."""

    __slots__ = ("_op",)

    def __init__(self, op: "Operation", bindings):
        super().__init__(bindings)
        self._op = op
        for key, b in [(k, b) for k, b in self.items() if isinstance(b, list)]:
            dict.__setitem__(self, key, _TrackedList(op, b))

    def __setitem__(self, key, binding):
        op = self._op
        if isinstance(binding, list) and op is not None:
            binding = _TrackedList(op, binding)
        old = self.get(key, _MISSING)
        super().__setitem__(key, binding)
        if op is not None:
            if old is not _MISSING:
                op._note_uses((_detached(old),), -1)
            op._note_uses((binding,), 1)

    def __delitem__(self, key):
        old = self[key]
        super().__delitem__(key)
        if self._op is not None:
            self._op._note_uses((_detached(old),), -1)

    def pop(self, key, *default):
        if key in self:
            old = self[key]
            del self[key]
            return old
        return super().pop(key, *default)

    def popitem(self):
        key = next(reversed(self))
        return key, self.pop(key)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs):
        for key, b in dict(*args, **kwargs).items():
            self[key] = b

    def __ior__(self, other):
        self.update(other)
        return self

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def __reduce_ex__(self, protocol):
        return dict, (dict(self),)

    def __copy__(self):
        return dict(self)


_MISSING = object()


def _detached(binding):
    """A binding that has left its op: a list of it stops reporting (someone may still hold it)."""
    if isinstance(binding, _TrackedList):
        binding._owner = None
    return binding


class Operation:
    __slots__ = ("op_type", "name", "_inputs", "outputs", "blocks", "attributes", "block")

    def __init__(self, op_type: str, name: str, inputs: dict[str, Any], outputs: list[Var],
                 blocks: list["Block"] | None = None, attributes: dict[str, Any] | None = None):
        self.op_type = op_type
        self.name = name
        self.block: Block | None = None  # the block containing this op
        self._inputs = _Inputs(self, inputs)
        self.outputs = outputs
        self.blocks = blocks or []
        self.attributes = attributes or {}
        for v in outputs:
            v.op = self
        for b in self.blocks:
            b.parent = self

    @property
    def inputs(self) -> dict[str, Var | list[Var]]:
        return self._inputs

    @inputs.setter
    def inputs(self, bindings: dict[str, Any]) -> None:
        old, self._inputs = self._inputs, _Inputs(self, bindings)
        old._op = None  # the old dict stops reporting (someone may still hold it)
        self._note_uses([_detached(b) for b in old.values()], -1)
        self._note_uses(self._inputs.values(), 1)

    def _note_uses(self, bindings, delta: int) -> None:
        if self.block is not None:  # only an op in a block reads anything
            _count(self, bindings, delta)

    def input_vars(self) -> Iterator[Var]:
        for b in self._inputs.values():
            if isinstance(b, list):
                yield from b
            else:
                yield b

    def _rebind(self, old: Var, new: Var) -> None:
        for key, b in list(self._inputs.items()):
            if isinstance(b, list):
                if any(v is old for v in b):
                    self._inputs[key] = [new if v is old else v for v in b]
            elif b is old:
                self._inputs[key] = new

    def __repr__(self) -> str:
        return f"<{self.op_type} {self.name}>"


class Block:
    """A list of ops, its inputs (nested blocks) and the Vars it returns.

    `insert_before` and `remove` cost O(1): they are recorded and applied to the op list in one sweep
    the next time `operations` is read, so a pass rewriting thousands of ops in a block of tens of
    thousands stays linear. The op list read after any edits is exactly what editing in place would
    have given."""

    def __init__(self, inputs: list[Var] | None = None):
        self.inputs: list[Var] = list(inputs or [])
        for v in self.inputs:
            v.block = self
        self._ops: list[Operation] = []
        self._before: dict[int, list[Operation]] = {}  # id(anchor) → ops inserted before it, in order
        self._gone: set[int] = set()  # ids of ops removed since the op list was last brought up to date
        self._outputs = _TrackedList(self)
        self.parent: Operation | None = None  # the op owning this nested block

    @property
    def operations(self) -> list[Operation]:
        if self._before or self._gone:
            self._apply_edits()
        return self._ops

    @operations.setter
    def operations(self, ops: Iterable[Operation]) -> None:
        """Replace the op list: ops left out leave the block, new ones join it."""
        ops = list(ops)
        kept = {id(op) for op in ops}
        for op in self.operations:
            if id(op) not in kept:
                self._release(op)
        for op in ops:
            if op.block is not self:
                self._take(op)
        self._ops = ops

    def _apply_edits(self) -> None:
        """Put the recorded insertions in place and drop the removed ops, in one sweep (in place, so a
        reference to the list stays valid)."""
        before, gone = self._before, self._gone
        ops: list[Operation] = []
        for op in self._ops:
            stack = [op]
            while stack:
                top = stack[-1]
                earlier = before.pop(id(top), None)
                if earlier:  # emit what was inserted before `top` first, oldest insertion first
                    stack.extend(reversed(earlier))
                    continue
                stack.pop()
                if id(top) not in gone:
                    ops.append(top)
        self._ops[:] = ops
        before.clear()
        gone.clear()

    def _holds(self, op: Operation) -> bool:
        return op.block is self and id(op) not in self._gone

    @property
    def outputs(self) -> list[Var]:
        return self._outputs

    @outputs.setter
    def outputs(self, values: Iterable[Var]) -> None:
        # A new list, as plain assignment would give; the old one stops counting (someone may hold it).
        new = _TrackedList(self, values)
        old, self._outputs = self._outputs, new
        old._owner = None
        _count(self, old, -1)
        _count(self, new, 1)

    def _note_uses(self, items, delta: int) -> None:
        _count(self, items, delta)

    def append(self, op: Operation) -> None:
        if id(op) in self._gone:
            self._apply_edits()  # a removed op coming back: its old place must go first
        self._take(op)
        self._ops.append(op)

    def insert_before(self, anchor: Operation, op: Operation) -> None:
        if not self._holds(anchor):
            raise ValueError(f"insert_before: {anchor!r} is not in this block")
        if id(op) in self._gone:
            self._apply_edits()
        self._take(op)
        self._before.setdefault(id(anchor), []).append(op)

    def remove(self, op: Operation) -> None:
        if not self._holds(op):
            raise ValueError(f"remove: {op!r} is not in this block")
        self._gone.add(id(op))  # the op stays referenced from _ops until the edit, so its id stays unique
        self._release(op)

    def _take(self, op: Operation) -> None:
        if op.block is None:
            op.block = self
            _count(op, op.inputs.values(), 1)
        else:
            op.block = self

    @staticmethod
    def _release(op: Operation) -> None:
        if op.block is not None:
            _count(op, op.inputs.values(), -1)
            op.block = None

    def walk(self) -> Iterator[Operation]:
        """Every op in this block and its nested blocks, in program order."""
        for op in self.operations:
            yield op
            for b in op.blocks:
                yield from b.walk()

    def encloses(self, block: "Block | None") -> bool:
        """Whether `block` is this block or nested (at any depth) in one of its ops."""
        while block is not self:
            if block is None or block.parent is None:
                return False
            block = block.parent.block
        return True

    def _users(self, v: Var) -> Iterator[tuple[Operation | Block, int]]:
        for user, n in v._uses.items():
            if self.encloses(user if isinstance(user, Block) else user.block):
                yield user, n

    def use_count(self, v: Var) -> int:
        """How often `v` is read by ops in this block tree or returned by one of its blocks."""
        return sum(n for _, n in self._users(v))

    def readers(self, v: Var) -> list[Operation]:
        """The ops in this block tree that read `v`, once per binding that reads it."""
        return [user for user, n in self._users(v) if isinstance(user, Operation) for _ in range(n)]

    def returns(self, v: Var) -> bool:
        """Whether this block's own outputs include `v`."""
        return self in v._uses

    def replace_uses(self, old: Var, new: Var) -> None:
        """Point every use of `old` in this block tree (and its outputs) at `new`."""
        if old is new:
            return
        for user, _ in list(self._users(old)):
            if isinstance(user, Block):
                user.outputs = [new if v is old else v for v in user.outputs]
            else:
                user._rebind(old, new)

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


class ContentKey:
    """A value's bytes (as `np.ascontiguousarray(value, dtype)` lays them out) as a dict key.

    Equal keys mean equal SHA-256 digests of the bytes, as a key built from the digest would; but the
    hash is taken from a sample of ~4096 evenly spaced elements, and a digest is computed only when two
    samples match (then kept). Keying gigabytes of model weights, which almost all differ, thus reads
    little more than their samples. Only `value` is kept, not a converted copy: a digest converts again.
    Two values laid out in the same memory (one weight shared by two consts, each with its own numpy
    view of the parameter) are equal without a digest.
    """

    __slots__ = ("_value", "_dtype", "_nbytes", "_address", "_hash", "_digest")
    _SAMPLE = 4096

    def __init__(self, value, dtype=None, *, array: np.ndarray | None = None):
        """`array`, when the caller has it already, is `np.ascontiguousarray(value, dtype)`."""
        arr = np.ascontiguousarray(value, dtype=dtype) if array is None else array
        self._value, self._dtype, self._nbytes = value, dtype, arr.nbytes
        # The address identifies the bytes only while they live: so only when they are `value`'s own
        # (kept alive here), not a converted copy whose memory may be reused once it is dropped.
        own = isinstance(value, np.ndarray) and np.may_share_memory(arr, value)
        self._address = arr.__array_interface__["data"][0] if own else None
        flat = arr.reshape(-1)
        step = max(1, flat.size // self._SAMPLE)
        self._hash = hash((arr.nbytes, flat[::step].tobytes(), flat[-1:].tobytes()))
        self._digest: bytes | None = None

    def digest(self) -> bytes:
        if self._digest is None:
            arr = np.ascontiguousarray(self._value, dtype=self._dtype)
            self._digest = hashlib.sha256(arr.reshape(-1).view(np.uint8)).digest()
        return self._digest

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if not isinstance(other, ContentKey):
            return NotImplemented
        if self._hash != other._hash or self._nbytes != other._nbytes:
            return False
        if self._value is other._value and self._dtype == other._dtype:
            return True
        if self._address is not None and self._address == other._address:
            return True
        return self.digest() == other.digest()
