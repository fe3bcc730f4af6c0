"""Structural and type verification of a whole program.

The Builder type-checks each op as it is added; passes and the proto reader can break things the Builder
never saw, so this re-checks everything: every input refers to a Var visible at that point (defined
earlier in the block or in an enclosing scope), names are unique per function, each op's inputs satisfy
its catalogue declaration for the function's target and re-inferred output types agree with the
recorded ones, and block outputs are visible Vars.
"""

from __future__ import annotations

from ..errors import VerificationError
from .ops import CATALOGUE
from .ops.spec import OpContext, infer_types
from .program import Block, Function, Program
from .types import TensorType


def verify_program(program: Program) -> None:
    if not program.functions:
        raise VerificationError("program has no functions")
    for fn in program.functions.values():
        verify_function(fn)


def verify_function(fn: Function) -> None:
    seen_names: set[str] = set()
    for v in fn.inputs:
        _claim(fn, seen_names, v.name)
    _verify_block(fn, fn.block, {id(v) for v in fn.inputs}, seen_names)
    if not fn.block.outputs:
        raise VerificationError(f"function {fn.name!r} returns nothing")


def _claim(fn: Function, seen: set[str], name: str) -> None:
    if name in seen:
        raise VerificationError(f"function {fn.name!r}: the name {name!r} is defined twice")
    seen.add(name)


def _verify_block(fn: Function, block: Block, visible: set[int], seen: set[str]) -> None:
    # One `visible` set for the whole function: a block adds what it defines and takes it out again
    # when it ends (a copy per nested block would cost the function's size for each one).
    defined: list[int] = []
    for v in block.inputs:
        _claim(fn, seen, v.name)
        visible.add(id(v))
        defined.append(id(v))
    for op in block.operations:
        where = f"function {fn.name!r}, op {op.op_type} {op.name!r}"
        for v in op.input_vars():
            if id(v) not in visible:
                raise VerificationError(f"{where}: input %{v.name} is not defined before its use")
        for nested in op.blocks:
            _verify_block(fn, nested, visible, seen)
        if op.op_type != "const":
            _verify_types(fn, op, where)
        for v in op.outputs:
            _claim(fn, seen, v.name)
            visible.add(id(v))
            defined.append(id(v))
    for v in block.outputs:
        if id(v) not in visible:
            raise VerificationError(f"function {fn.name!r}: block output %{v.name} is not defined in scope")
    visible.difference_update(defined)


def _verify_types(fn: Function, op, where: str) -> None:
    spec = CATALOGUE.lookup(op.op_type, fn.target)
    ctx = OpContext(spec, op.inputs, fn.target, op.blocks, name=op.name)
    inferred = infer_types(ctx)
    if len(inferred) != len(op.outputs):
        raise VerificationError(f"{where}: has {len(op.outputs)} outputs, the op defines {len(inferred)}")
    for out, t in zip(op.outputs, inferred):
        if isinstance(t, TensorType) and isinstance(out.type, TensorType):
            if t.dtype is not out.type.dtype or t.rank != out.type.rank or any(
                    isinstance(a, int) and isinstance(b, int) and a != b
                    for a, b in zip(t.shape, out.type.shape)):
                raise VerificationError(f"{where}: output %{out.name} is recorded as {out.type}, "
                                        f"but its inputs give {t}")
