"""Common subexpression elimination: ops of the same type on the same inputs compute the same value.

    before:  %a = const(val=1.0);  %b = const(val=1.0);  %y = add(x=%a, y=%x);  %z = add(x=%b, y=%x)
    after:   %a = const(val=1.0);  %y = add(x=%a, y=%x)          (uses of %b, %z now use %a, %y)

Consts are keyed by dtype, shape and bytes; other ops by type and input identities. Impure ops
(random draws, state access) and ops owning blocks are never merged.

The pass costs one sweep: uses are redirected through the Vars' use lists, and a const's bytes are
hashed in full only when a sample of them matches another const's (see `ContentKey`), so gigabytes of
distinct weights are not hashed again every round.
"""

from __future__ import annotations

import numpy as np

from ..program import Block, ContentKey, Operation, Program
from .manager import PassResult

_IMPURE_PREFIXES = ("random_", "read_state", "write_state")


def eliminate_common_subexpressions(program: Program) -> PassResult:
    merged = 0
    for fn in program.functions.values():
        merged += _cse_block(fn.block, fn.block)
    return PassResult(program, merged > 0)


def _cse_block(block: Block, root: Block) -> int:
    seen: dict[tuple, Operation] = {}
    returned = {id(v) for v in root.outputs}
    merged = 0
    for op in list(block.operations):
        for nested in op.blocks:
            merged += _cse_block(nested, root)
        key = _key(op)
        if key is None or any(id(v) in returned for v in op.outputs):
            continue  # a function output keeps its own op: Core ML wants distinct, op-produced outputs
        first = seen.get(key)
        if first is None:
            seen[key] = op
            continue
        for old, new in zip(op.outputs, first.outputs):
            root.replace_uses(old, new)
        block.remove(op)
        merged += 1
    return merged


def _key(op: Operation):
    if op.blocks or op.op_type.startswith(_IMPURE_PREFIXES) or not op.outputs:
        return None
    if op.op_type == "const":
        value = op.attributes["val"]
        out = op.outputs[0]
        if isinstance(value, str):
            return ("const", str(out.type), value)
        arr = np.ascontiguousarray(value)
        if arr.dtype == object:
            return ("const", str(out.type), tuple(arr.reshape(-1).tolist()))
        return ("const", str(out.type), ContentKey(value, array=arr))
    inputs = tuple(sorted((k, tuple(id(v) for v in b) if isinstance(b, list) else id(b))
                          for k, b in op.inputs.items()))
    return (op.op_type, inputs)
