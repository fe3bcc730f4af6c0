"""Remove ops whose outputs nothing uses.

    before:  %a = relu(x=%x);  %b = sigmoid(x=%x)  -> (%b)
    after:   %b = sigmoid(x=%x)                    -> (%b)

Ops with side effects (`write_state`) and ops owning blocks whose results are used stay. Works bottom-up
per block so a chain of dead ops goes in one run.
"""

from __future__ import annotations

from ..program import Block, Program
from .manager import PassResult

_SIDE_EFFECTS = frozenset({"write_state"})


def eliminate_dead_code(program: Program) -> PassResult:
    removed = 0
    for fn in program.functions.values():
        removed += _sweep(fn.block, set())
    return PassResult(program, removed > 0)


def _sweep(block: Block, used_outside: set[int]) -> int:
    used = set(used_outside) | {id(v) for v in block.outputs}
    removed = 0
    for op in reversed(list(block.operations)):
        live = op.op_type in _SIDE_EFFECTS or any(id(v) in used for v in op.outputs)
        if not live:
            block.remove(op)
            removed += 1
            continue
        for nested in op.blocks:
            removed += _sweep(nested, used)
            used |= _uses_in(nested)
        used |= {id(v) for v in op.input_vars()}
    return removed


def _uses_in(block: Block) -> set[int]:
    ids = {id(v) for v in block.outputs}
    for op in block.walk():
        ids |= {id(v) for v in op.input_vars()}
    return ids
