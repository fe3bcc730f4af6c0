"""Comparisons with coremltools for the tensor op families (complementing `_eval.py`/`_oracle.py`).

Types: `assert_same_types` compares inferred types and keeps track of *which* symbol each dim is.

    ours_types("concat", {"values": [(("n", 2), "fp32"), (("n", 3), "fp32")]}, {"axis": 1})
    # -> [("fp32", ("n", 5))]

Input shapes may hold strings: each distinct string is one symbol, shared by every input that names
it, in both our program and coremltools'. In the results an output dim that *is* one of those input
symbols is spelled by its name; any other symbolic dim (fresh, or an expression such as 2*n) is "?".
So `assert_same_types` checks static dims, symbol identity and where fresh symbols appear.
An input given as a list of specs is variadic (e.g. concat's `values`); a list in `consts` for a
variadic input becomes one const per element.

Values: `check_values` runs our kernel (inputs in `runtime` become function inputs, `consts` const
ops) and compares with coremltools' value inference on the same values, or with `expected`.
"""

from __future__ import annotations

import numpy as np

from tests.mil.ops._eval import ct_value, run_op
from tests.mil.ops._oracle import assert_close
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.targets import parse_target
from torch_coreml.mil.types import Symbol, TensorType


def _flat_specs(inputs: dict):
    """[(input name, argument name, shape, dtype)] with variadic inputs unrolled."""
    out = []
    for name, spec in inputs.items():
        specs = spec if isinstance(spec, list) else [spec]
        for i, (shape, dtype) in enumerate(specs):
            out.append((name, f"{name}_{i}" if isinstance(spec, list) else name, tuple(shape), dtype))
    return out


def _symbol_names(inputs: dict) -> set:
    return {d for _, _, shape, _ in _flat_specs(inputs) for d in shape if isinstance(d, str)}


def ours_types(op_type: str, inputs: dict, consts: dict | None = None, target="iOS17"):
    target = parse_target(target)
    flat = _flat_specs(inputs)
    types = {arg: TensorType(dt.from_name(dtype), tuple(Symbol(d) if isinstance(d, str) else d for d in shape))
             for _, arg, shape, dtype in flat}
    fn, b = new_function("main", types, target)
    bound: dict = {}
    for name, arg, _, _ in flat:
        var = fn.input_named(arg)
        if isinstance(inputs[name], list):
            bound.setdefault(name, []).append(var)
        else:
            bound[name] = var
    spec = CATALOGUE.lookup(op_type, target)
    for name, val in (consts or {}).items():
        variadic = spec.input(name).variadic if name in {i.name for i in spec.inputs} else False
        bound[name] = [b.const(v) for v in val] if variadic else b.const(val)
    op = b.add_op(op_type, bound)
    names = _symbol_names(inputs)
    return [(o.type.dtype.name, tuple(d.name if isinstance(d, Symbol) and d.name in names
                                      else "?" if isinstance(d, Symbol) else d for d in o.type.shape))
            for o in op.outputs]


def ct_types(op_type: str, inputs: dict, consts: dict | None = None, target="iOS17"):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol
    from coremltools.converters.mil.mil import types as cttypes
    from coremltools.converters.mil.mil.types.symbolic import is_symbolic

    target = parse_target(target)
    flat = _flat_specs(inputs)
    symbols = {name: get_new_symbol() for name in sorted(_symbol_names(inputs))}
    specs = [mb.TensorSpec(shape=[symbols[d] if isinstance(d, str) else d for d in shape],
                           dtype=getattr(cttypes, dtype)) for _, _, shape, dtype in flat]
    result = {}

    def body(*args):
        kwargs: dict = {}
        for (name, _, _, _), var in zip(flat, args):
            if isinstance(inputs[name], list):
                kwargs.setdefault(name, []).append(var)
            else:
                kwargs[name] = var
        kwargs.update(consts or {})
        out = getattr(mb, op_type)(**kwargs)
        result["out"] = list(out) if isinstance(out, (list, tuple)) else [out]
        return result["out"]

    args = [arg for _, arg, _, _ in flat]
    ns: dict = {"body": body}
    exec(f"def f({', '.join(args)}):\n    return body({', '.join(args)})", ns)
    mb.program(input_specs=specs, opset_version=getattr(ct.target, target.name))(ns["f"])
    by_symbol = {sym: name for name, sym in symbols.items()}
    out = []
    for v in result["out"]:
        shape = tuple(by_symbol.get(d, "?") if is_symbolic(d) else int(d) for d in v.shape)
        out.append((cttypes.builtin_to_string(v.dtype), shape))
    return out


def assert_same_types(op_type: str, inputs: dict, consts: dict | None = None, target="iOS17"):
    ours = ours_types(op_type, inputs, consts, target)
    theirs = ct_types(op_type, inputs, consts, target)
    assert ours == theirs, f"{op_type}@{target}: ours {ours} != coremltools {theirs}"
    return ours


def _variadic(op_type: str, target, name: str) -> bool:
    spec = CATALOGUE.lookup(op_type, parse_target(target))
    return any(i.name == name and i.variadic for i in spec.inputs)


def run(op_type: str, runtime: dict, consts: dict | None = None, target="iOS17"):
    """Our kernel's outputs (numpy, cast to the inferred dtypes) and the inferred types."""
    consts = {(k + "*" if _variadic(op_type, target, k) else k): v for k, v in (consts or {}).items()}
    outs, types = run_op(op_type, target, consts=consts, **runtime)
    return [o.numpy() if hasattr(o, "numpy") else o for o in outs], types


def check_values(op_type: str, runtime: dict, consts: dict | None = None, target="iOS17", expected=None):
    outs, types = run(op_type, runtime, consts, target)
    if expected is None:
        expected = ct_value(op_type, {**runtime, **(consts or {})}, target)
        assert all(e is not None for e in expected), f"coremltools has no value for {op_type}"
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    assert len(outs) == len(expected), (len(outs), len(expected))
    for got, want, t in zip(outs, expected, types):
        assert_close(got, np.asarray(want), t.dtype.name)
    return outs


def loose_declarations(op_type: str, target):
    """(ours, coremltools') input rows (name, const, optional, domain) for ops with tuple or untyped
    inputs, which `_oracle.ct_declaration` cannot read: such inputs are spelled "tuple" / "any" and
    their const flag is None: coremltools declares tuple inputs non-const even where it reads their values
    (reshape_like's begins/ends/end_masks), and its serializer then requires literals."""
    import coremltools as ct
    from coremltools.converters.mil.mil.input_type import TupleInputType
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry
    from coremltools.converters.mil.mil.types import builtin_to_string

    target = parse_target(target)
    cls = SSAOpRegistry.core_ops[op_type][getattr(ct.target, target.name)]
    theirs = []
    for name, spec in cls.input_spec.input_types.items():
        if isinstance(spec, TupleInputType):
            domain = "tuple"
        elif not hasattr(spec, "type_domain_id"):
            domain = "any"
        else:
            var = spec.type_domain_id
            d = cls.type_domains[var] if var is not None else spec.type_domain
            domain = tuple(sorted(builtin_to_string(x) for x in d))
        const = None if isinstance(domain, str) else bool(spec.const)
        theirs.append((name, const, bool(spec.optional), domain))
    ours = []
    spec = CATALOGUE.lookup(op_type, target)
    for i in spec.inputs:
        if i.variadic:
            domain = "tuple"
        elif isinstance(i.types, str) and i.types not in spec.domains:
            domain = i.types  # ANY / LIST / STATE
        else:
            d = spec.domains[i.types] if isinstance(i.types, str) else i.types
            domain = tuple(sorted(x.name for x in d))
        ours.append((i.name, None if isinstance(domain, str) else i.const, i.optional, domain))
    return ours, theirs
