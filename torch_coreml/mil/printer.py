"""A readable text form of a MIL program, close to the syntax Core ML tools print.

    main(%x: tensor<fp32, [1, 4]>) [CoreML7] {
      %w: tensor<fp32, [3, 4]> = const(val=<fp32 [3, 4]>)
      %y: tensor<fp32, [1, 3]> = linear(x=%x, weight=%w)
    } -> (%y)
"""

from __future__ import annotations

import numpy as np

from .program import Block, Function, Operation, Program, Var

_INLINE_LIMIT = 6  # consts with at most this many elements print their values


def format_program(program: Program) -> str:
    return "\n\n".join(format_function(f) for f in program.functions.values())


def format_function(fn: Function) -> str:
    params = ", ".join(f"%{v.name}: {v.type}" for v in fn.inputs)
    lines = [f"{fn.name}({params}) [{fn.opset}] {{"]
    lines += _block_lines(fn.block, "  ")
    lines.append(f"}} -> ({', '.join('%' + v.name for v in fn.block.outputs)})")
    return "\n".join(lines)


def _block_lines(block: Block, indent: str) -> list[str]:
    lines = []
    for op in block.operations:
        lines.append(indent + format_op(op))
        for i, nested in enumerate(op.blocks):
            params = ", ".join(f"%{v.name}: {v.type}" for v in nested.inputs)
            lines.append(f"{indent}  block{i}({params}) {{")
            lines += _block_lines(nested, indent + "    ")
            lines.append(f"{indent}  }} -> ({', '.join('%' + v.name for v in nested.outputs)})")
    return lines


def format_op(op: Operation) -> str:
    outs = ", ".join(f"%{v.name}: {v.type}" for v in op.outputs)
    if op.op_type == "const":
        args = f"val={format_value(op.attributes['val'], op.outputs[0])}"
    else:
        args = ", ".join(f"{k}={_binding(b)}" for k, b in op.inputs.items())
    lhs = f"{outs} = " if outs else ""
    return f"{lhs}{op.op_type}({args})"


def _binding(b) -> str:
    if isinstance(b, list):
        return "(" + ", ".join(_binding(v) for v in b) + ")"
    if isinstance(b, Var) and b.is_const and _small(b.value):
        return format_value(b.value, b)
    return f"%{b.name}"


def _small(value) -> bool:
    return isinstance(value, str) or np.asarray(value).size <= _INLINE_LIMIT


def format_value(value, var: Var) -> str:
    if isinstance(value, str):
        return repr(value)
    arr = np.asarray(value)
    if arr.size <= _INLINE_LIMIT:
        return str(arr.tolist()).replace(" ", "") if arr.ndim else repr(arr.item())
    return f"<{var.dtype} {list(arr.shape)}>"
