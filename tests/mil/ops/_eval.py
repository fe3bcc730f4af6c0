"""Test helpers for op catalogue tests: run one op of ours, and ask coremltools what it infers.

    outs, types = run_op("add", x=np.ones((2, 3), np.float32), y=np.float32(2))
    ct_types = ct_infer("add", {"x": ((2, 3), "fp32")}, consts={"y": np.float32(2)})

`run_op` turns numpy arrays into function inputs (runtime values) and everything passed in `consts`
into const ops, type-checks and infers through the Builder, then calls the catalogue kernel.
`ct_infer` builds the same op in coremltools' MIL builder (the oracle) and returns its output types as
(dtype name, shape) pairs in our spelling.
"""

from __future__ import annotations

import numpy as np
import torch

from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.ops.const import const_to_runtime
from torch_coreml.mil.ops.spec import OpContext, call_kernel
from torch_coreml.mil.targets import Target, parse_target
from torch_coreml.mil.types import TensorType


def run_op(op_type: str, target="iOS17", consts: dict | None = None, **inputs):
    """Returns (list of torch outputs cast to their inferred dtypes, list of inferred types)."""
    target = parse_target(target)
    in_types = {}
    for name, val in inputs.items():
        arr = np.asarray(val)
        in_types[name] = TensorType(dt.from_numpy(arr.dtype), arr.shape)
    fn, b = new_function("main", in_types, target)
    bound = {name: fn.input_named(name) for name in inputs}
    for name, val in (consts or {}).items():
        bound[name] = [b.const(v) for v in val] if isinstance(val, list) and name.endswith("*") else b.const(val)
    bound = {k.rstrip("*"): v for k, v in bound.items()}
    op = b.add_op(op_type, bound)
    spec = CATALOGUE.lookup(op_type, target)
    ctx = OpContext(spec, op.inputs, target, op.blocks, name=op.name)
    values = {}
    for key, v in op.inputs.items():
        if isinstance(v, list):
            values[key] = [_runtime(x, inputs) for x in v]
        else:
            values[key] = _runtime(v, inputs)
    out_types = [o.type for o in op.outputs]
    result = call_kernel(ctx, values, out_types)
    results = list(result) if isinstance(result, (tuple, list)) else [result]
    cast = [r.to(t.dtype.torch) if isinstance(r, torch.Tensor) and isinstance(t, TensorType) and t.dtype.torch
            else r for r, t in zip(results, out_types)]
    return cast, out_types


def _runtime(var, inputs):
    if var.is_const:
        return const_to_runtime(var.value, var.type)
    arr = np.asarray(inputs[var.name])
    return dt.numpy_to_torch(arr, dt.from_numpy(arr.dtype))


_CT_DTYPES = {"fp16": "fp16", "fp32": "fp32", "int32": "int32", "bool": "bool", "int8": "int8",
              "uint8": "uint8", "int16": "int16", "uint16": "uint16"}


def ct_infer(op_type: str, input_types: dict, consts: dict | None = None, target="iOS17"):
    """coremltools' inferred output types: [(dtype name, shape tuple)]. Shapes may hold strings for
    symbolic dims (pass a string dim in `input_types` to make one)."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types as cttypes
    from coremltools.converters.mil.mil.types.symbolic import is_symbolic
    from coremltools.converters.mil.mil import get_new_symbol

    target = parse_target(target)
    ct_target = {Target.iOS15: ct.target.iOS15, Target.iOS16: ct.target.iOS16,
                 Target.iOS17: ct.target.iOS17, Target.iOS18: ct.target.iOS18}[target]
    names = list(input_types)
    specs = []
    for name in names:
        shape, dtype = input_types[name]
        shape = [d if isinstance(d, int) else get_new_symbol() for d in shape]
        specs.append(mb.TensorSpec(shape=shape, dtype=getattr(cttypes, dtype)))
    result = {}

    def body(*args):
        kwargs = dict(zip(names, args))
        kwargs.update(consts or {})
        out = getattr(mb, op_type)(**kwargs)
        result["out"] = out if isinstance(out, (list, tuple)) else [out]
        return result["out"]

    body.__signature__ = None
    prog_fn = mb.program(input_specs=specs, opset_version=ct_target)
    # mb.program needs a function with named positional parameters matching the specs.
    ns: dict = {"body": body}
    exec(f"def f({', '.join(names)}):\n    return body({', '.join(names)})", ns)
    prog_fn(ns["f"])
    out = []
    for v in result["out"]:
        dtype_name = cttypes.builtin_to_string(v.dtype)
        shape = tuple(int(d) if not is_symbolic(d) else str(d) for d in v.shape)
        out.append((dtype_name, shape))
    return out


def ct_value(op_type: str, consts: dict, target="iOS17"):
    """coremltools' compile-time value of the op on all-const inputs (its value_inference), or None."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    target = parse_target(target)
    ct_target = {Target.iOS15: ct.target.iOS15, Target.iOS16: ct.target.iOS16,
                 Target.iOS17: ct.target.iOS17, Target.iOS18: ct.target.iOS18}[target]
    result = {}

    @mb.program(input_specs=[mb.TensorSpec(shape=(1,))], opset_version=ct_target)
    def prog(dummy):
        out = getattr(mb, op_type)(**consts)
        result["out"] = out if isinstance(out, (list, tuple)) else [out]
        return dummy

    return [None if v.val is None else np.asarray(v.val) for v in result["out"]]
