"""Small helpers shared by the rewriting passes: use counts, const reads, fresh names, op creation.

Passes here edit blocks directly (no Builder): a rewritten value keeps its Var's name and type, so a
function output stays the output of an op under its own name.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import dtypes as dt
from ..program import Block, Function, Operation, Program, Var
from ..types import TensorType
from .manager import PassResult


def use_counts(root: Block) -> Callable[[Var | None], int]:
    """`uses(v)`: how often v is read in `root` (nested blocks included) or returned by any block.

    Read from the Vars' own use lists, so it is live: it stays right while a sweep rewrites the
    program, and asking costs the number of v's uses, not a walk over the function."""
    def uses(v) -> int:
        return root.use_count(v) if isinstance(v, Var) else 0
    return uses


def const_f32(v) -> np.ndarray | None:
    """A const Var's value as fp32 (reads deferred-fp16 data too), or None when `v` is not a const."""
    if not isinstance(v, Var) or not v.is_const or isinstance(v.value, str):
        return None
    return np.asarray(v.value, dtype=np.float32)


def const_scalar(v) -> float | None:
    """The single value of a const whose elements are all equal (a scalar or a splat), else None."""
    arr = const_f32(v)
    if arr is None or arr.size == 0 or not np.all(arr == arr.reshape(-1)[0]):
        return None
    return float(arr.reshape(-1)[0])


def close(value: float | None, expected: float, rtol: float = 1e-6) -> bool:
    """value ≈ expected, or ≈ expected rounded to fp16 (the formula's constant in an fp16 program)."""
    if value is None:
        return False
    return any(abs(value - e) <= rtol * abs(e) + 1e-12 for e in (expected, float(np.float16(expected))))


def const_ints(v) -> list[int] | None:
    if not isinstance(v, Var) or not v.is_const or isinstance(v.value, str):
        return None
    return [int(i) for i in np.asarray(v.value).reshape(-1).tolist()]


def producer(v, op_type: str | tuple[str, ...]) -> Operation | None:
    types = (op_type,) if isinstance(op_type, str) else op_type
    return v.op if isinstance(v, Var) and v.op is not None and v.op.op_type in types else None


def other_operand(op: Operation, v: Var) -> Var | None:
    """For a binary op with inputs x, y: the one that is not `v` (None when `v` is neither)."""
    x, y = op.inputs.get("x"), op.inputs.get("y")
    if x is v:
        return y
    if y is v:
        return x
    return None


class Names:
    """Fresh SSA names for one function."""

    def __init__(self, fn: Function):
        self.used = {v.name for v in fn.inputs} | {v.name for op in fn.block.walk() for v in op.outputs}
        self.used |= {op.name for op in fn.block.walk()}

    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


def new_const(block: Block, before: Operation, names: Names, value, dtype: dt.DType, hint: str) -> Var:
    if dtype is dt.string:
        var = Var(names.fresh(hint), TensorType(dt.string, ()))
    else:
        value = np.asarray(value, dtype=dtype.numpy)
        var = Var(names.fresh(hint), TensorType(dtype, value.shape))
    block.insert_before(before, Operation("const", names.fresh(var.name + "_op"), {}, [var],
                                          attributes={"val": value}))
    return var


def replace_op(block: Block, root: Block, old: Operation, op_type: str, inputs: dict, names: Names) -> Operation:
    """Put a new `op_type` op where `old` is; it takes over `old`'s output Var (name, type and uses)."""
    out = old.outputs[0]
    new = Operation(op_type, names.fresh(old.name + "_" + op_type), inputs, [Var(out.name, out.type)])
    block.insert_before(old, new)
    root.replace_uses(out, new.outputs[0])
    block.remove(old)
    return new


def sweep_all_blocks(program: Program, sweep) -> PassResult:
    """Run `sweep(block, root, names) -> count` on every block of every function (nested ones too)."""
    changed = 0
    for fn in program.functions.values():
        names = Names(fn)
        for block in [fn.block] + [b for op in fn.block.walk() for b in op.blocks]:
            changed += sweep(block, fn.block, names)
    return PassResult(program, changed > 0)
