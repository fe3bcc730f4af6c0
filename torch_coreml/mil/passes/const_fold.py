"""Constant folding: run an op whose inputs are all compile-time values through its catalogue kernel
and replace it with a `const`.

    before:  %s = const(val=[2, 3]);  %n = reduce_prod(x=%s);  %y = reshape(x=%x, shape=...%n...)
    after:   %n = const(val=6);  ...

Folding uses the same kernels as the reference runtime (one semantics source). Ops are left alone when
they are not pure (random draws, state access), own nested blocks, or would turn a small input into a
large constant (e.g. `fill`, `tile`): that would only grow the package.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .. import dtypes as dt
from ..ops import CATALOGUE
from ..ops.const import const_to_runtime
from ..ops.spec import OpContext, call_kernel
from ..program import Block, Operation, Program, Var
from ..types import TensorType
from .manager import PassResult

log = logging.getLogger(__name__)

_IMPURE_PREFIXES = ("random_", "read_state", "write_state", "constexpr_")
_GROWTH_LIMIT = 4096  # a folded result may exceed its inputs' total size by at most this many elements


def fold_constants(program: Program) -> PassResult:
    folded = 0
    for fn in program.functions.values():
        folded += _fold_block(fn.block, fn.target)
    return PassResult(program, folded > 0)


def _fold_block(block: Block, target) -> int:
    folded = 0
    for op in list(block.operations):
        for nested in op.blocks:
            folded += _fold_block(nested, target)
        # A function output stays op-produced (Core ML's acceptance of a const output is unverified),
        # so a returned op folds into const → identity; an identity already is that form.
        returned = block.parent is None and any(block.returns(v) for v in op.outputs)
        if returned and op.op_type == "identity":
            continue
        if _foldable(op) and _fold(op, block, target, returned):
            folded += 1
    return folded


def _foldable(op: Operation) -> bool:
    if op.op_type == "const" or op.blocks or op.op_type.startswith(_IMPURE_PREFIXES):
        return False
    if not op.outputs or not all(isinstance(v.type, TensorType) and v.type.is_static for v in op.outputs):
        return False
    inputs = list(op.input_vars())
    if not all(v.is_const for v in inputs):
        return False
    in_size = sum(int(np.asarray(v.value).size) if not isinstance(v.value, str) else 1 for v in inputs)
    out_size = sum(v.type.numel() for v in op.outputs)
    return out_size <= in_size + _GROWTH_LIMIT


def _fold(op: Operation, block: Block, target, returned: bool = False) -> bool:
    spec = CATALOGUE.lookup(op.op_type, target)
    ctx = OpContext(spec, op.inputs, target, op.blocks, name=op.name)
    values = {k: [const_to_runtime(v.value, v.type) for v in b] if isinstance(b, list)
              else const_to_runtime(b.value, b.type) for k, b in op.inputs.items()}
    try:
        result = call_kernel(ctx, values, [v.type for v in op.outputs])
    except Exception as e:  # a kernel that cannot run on these values: leave the op to the runtime
        log.debug("not folding %s %s: %s", op.op_type, op.name, e)
        return False
    results = list(result) if isinstance(result, tuple) else [result]
    if len(results) != len(op.outputs) or not all(isinstance(r, torch.Tensor) for r in results):
        return False
    for out, value in zip(op.outputs, results):
        value = value.to(out.dtype.torch) if out.dtype.torch is not None else value
        if tuple(value.shape) != tuple(out.shape):
            return False
        const_name = op.name + "_folded" if len(op.outputs) == 1 else out.name + "_folded"
        const = Operation("const", const_name, {}, [Var(const_name if returned else out.name, out.type)],
                          attributes={"val": dt.torch_to_numpy(value, out.dtype)})
        block.insert_before(op, const)
        new = const.outputs[0]
        if returned:
            new = Var(out.name, out.type)
            block.insert_before(op, Operation("identity", out.name, {"x": const.outputs[0]}, [new]))
        _replace_everywhere(block, out, new)
    block.remove(op)
    return True


def _replace_everywhere(block: Block, old: Var, new: Var) -> None:
    root = block
    while root.parent is not None and root.parent.block is not None:
        root = root.parent.block
    root.replace_uses(old, new)
