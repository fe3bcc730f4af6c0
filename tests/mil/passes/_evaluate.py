"""Run a MIL function with the catalogue kernels (the reference semantics), for numeric pass tests."""

from __future__ import annotations

import torch

from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.ops.const import const_to_runtime
from torch_coreml.mil.ops.spec import OpContext, call_kernel


def evaluate(fn, inputs=None, seed=0):
    """The function's outputs on `inputs` (name → tensor); inputs not given are drawn from N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    env = {}
    for v in fn.inputs:
        given = (inputs or {}).get(v.name)
        env[v.name] = given if given is not None else torch.randn(v.shape, generator=gen).to(v.dtype.torch)
    for op in fn.block.operations:
        if op.op_type == "const":
            env[op.outputs[0].name] = const_to_runtime(op.attributes["val"], op.outputs[0].type)
            continue
        ctx = OpContext(CATALOGUE.lookup(op.op_type, fn.target), op.inputs, fn.target, name=op.name)
        values = {k: [env[x.name] for x in v] if isinstance(v, list) else env[v.name] for k, v in op.inputs.items()}
        result = call_kernel(ctx, values, [v.type for v in op.outputs])
        results = result if isinstance(result, tuple) else (result,)
        for var, value in zip(op.outputs, results):
            env[var.name] = value.to(var.dtype.torch) if isinstance(value, torch.Tensor) else value
    return [env[v.name] for v in fn.block.outputs]
