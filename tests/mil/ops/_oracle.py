"""More oracle helpers for op catalogue tests (complementing `_eval.py`).

    assert_same_declaration("elu", "iOS17")      # our In(...) list vs coremltools' input_spec
    ours = our_infer("add", {"x": (("n", 3), "fp32"), "y": ((3,), "fp32")})
    assert_types_match(ours, ct_infer("add", {...}))

Shapes may hold strings: each distinct string becomes one `Symbol` in our program (coremltools gets a
fresh symbol per string occurrence), and symbolic dims compare equal to any symbolic dim.
"""

from __future__ import annotations

import numpy as np

from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.targets import Target, parse_target
from torch_coreml.mil.types import Symbol, TensorType


def _ct_class(op_type: str, target: Target):
    import coremltools as ct
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    return SSAOpRegistry.core_ops[op_type][getattr(ct.target, target.name)]


def ct_declaration(op_type: str, target) -> list[tuple]:
    """coremltools' inputs as (name, const, optional, type variable or None, sorted dtype names)."""
    from coremltools.converters.mil.mil.types import builtin_to_string

    cls = _ct_class(op_type, parse_target(target))
    rows = []
    for name, spec in cls.input_spec.input_types.items():
        var = spec.type_domain_id
        domain = cls.type_domains[var] if var is not None else spec.type_domain
        rows.append((name, bool(spec.const), bool(spec.optional), var,
                     tuple(sorted(builtin_to_string(d) for d in domain))))
    return rows


def our_declaration(op_type: str, target) -> list[tuple]:
    spec = CATALOGUE.lookup(op_type, parse_target(target))
    rows = []
    for i in spec.inputs:
        var = i.types if isinstance(i.types, str) else None
        domain = spec.domains[var] if var is not None else i.types
        rows.append((i.name, i.const, i.optional, var, tuple(sorted(d.name for d in domain))))
    return rows


def assert_same_declaration(op_type: str, target) -> None:
    assert our_declaration(op_type, target) == ct_declaration(op_type, target)


def _ct_versions(op_type: str) -> dict:
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    return {Target(int(t)): cls for t, cls in SSAOpRegistry.core_ops[op_type].items()
            if int(t) >= Target.iOS15}


def ct_first_versions(op_type: str) -> list[Target]:
    """The targets at which coremltools registers a new definition of the op (iOS15 and later)."""
    versions = _ct_versions(op_type)
    firsts, prev = [], None
    for t in sorted(versions):
        if versions[t] is not prev:
            firsts.append(t)
        prev = versions[t]
    return firsts


def our_infer(op_type: str, input_types: dict, consts: dict | None = None, target="iOS17"):
    """Our inferred output types as [(dtype name, shape)] with symbols spelled as strings."""
    types = {name: TensorType(dt.from_name(dtype), tuple(Symbol(d) if isinstance(d, str) else d
                                                          for d in shape))
             for name, (shape, dtype) in input_types.items()}
    fn, b = new_function("main", types, target)
    inputs = {name: fn.input_named(name) for name in input_types}
    for name, val in (consts or {}).items():
        inputs[name] = b.const(val)
    op = b.add_op(op_type, inputs)
    return [(o.type.dtype.name, tuple(str(d) if isinstance(d, Symbol) else d for d in o.type.shape))
            for o in op.outputs]


def assert_types_match(ours, theirs) -> None:
    assert len(ours) == len(theirs), (ours, theirs)
    for (d1, s1), (d2, s2) in zip(ours, theirs):
        assert d1 == d2, (ours, theirs)
        assert len(s1) == len(s2), (ours, theirs)
        for a, b in zip(s1, s2):
            assert isinstance(a, str) == isinstance(b, str), (ours, theirs)
            if not isinstance(a, str):
                assert a == b, (ours, theirs)


def assert_close(ours, expected, dtype) -> None:
    """Compare a torch result with a numpy expectation at a tolerance fitting the dtype."""
    got = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype in ("fp16", "fp32"):
        tol = 2e-3 if dtype == "fp16" else 1e-5
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   rtol=tol, atol=tol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)
