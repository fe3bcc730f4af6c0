"""How a MIL op is declared in the catalogue, and the one place its declaration is enforced.

An op is a kernel function decorated with `mil_op`:

    @mil_op("layer_norm", since=Target.iOS15, domains={"T": FLOATS},
            inputs=[In("x", "T"), In("axes", INTS, const=True, optional=True, param=True),
                    In("gamma", "T", const=True, optional=True), In("beta", "T", const=True, optional=True),
                    In("epsilon", "T", const=True, optional=True, default=1e-5, param=True)],
            infer=same_as("x"))
    def layer_norm(x, axes, gamma, beta, epsilon):
        ...  # torch code; returns a tensor or a tuple of tensors

The declaration drives the Builder's type check, the verifier and the serializer's input order; `infer`
gives output types (type inference and shape propagation); the kernel is the op's semantics, used by
the reference runtime and by constant folding. A newer opset that changes an op registers the same name
again with a later `since`; lookups pick the newest version the target allows.

Kernel calling convention:
- every declared input is passed by name; an absent optional input gets its `default` (None if none);
- tensor inputs arrive as torch tensors (variadic inputs: a list of them); string inputs as `str`;
  inputs declared `param=True` arrive as python values (int/float/bool or nested lists), because they
  configure the op rather than carry data;
- a kernel that declares a parameter `out_types` receives the inferred output types; one that declares
  `run_block` receives a callable `run_block(index, values) -> list` for its nested blocks; one that
  declares `ctx` receives the op's `OpContext`.
- a kernel returns one value per output: a bare value for a single output, a tuple for several; so an
  op whose single output is a list (`make_list`, `list_write`) returns a 1-tuple holding the list;
- the runtime casts each returned tensor to the inferred dtype, so a kernel may compute in a wider type.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...errors import MILTypeError, UnsupportedOpError
from .. import dtypes as dt
from ..targets import Target
from ..types import ListType, StateType, TensorType, TupleType, ValueType

_NO_DEFAULT = object()

# Pseudo type domains for inputs that are not tensors.
LIST = "list"
STATE = "state"
ANY = "any"


@dataclass(frozen=True)
class In:
    """One op input.

    types: a type-variable name from the op's `domains` (inputs sharing a variable must share a dtype),
    a tuple of dtypes, or LIST / STATE / ANY.
    default: used when an optional input is absent; a callable receives the OpContext and computes it
    (e.g. strides defaulting to ones of the spatial rank).
    """

    name: str
    types: Any
    const: bool = False
    optional: bool = False
    variadic: bool = False
    param: bool = False
    default: Any = None


@dataclass(frozen=True)
class OpSpec:
    name: str
    inputs: tuple[In, ...]
    domains: Mapping[str, tuple[dt.DType, ...]]
    since: Target
    infer: Callable[["OpContext"], Any]
    kernel: Callable[..., Any]
    n_blocks: int = 0
    doc: str = ""
    kernel_wants: frozenset = field(default_factory=frozenset)

    def input(self, name: str) -> In:
        for i in self.inputs:
            if i.name == name:
                return i
        raise KeyError(name)


class Catalogue:
    def __init__(self):
        self._ops: dict[str, list[OpSpec]] = {}

    def register(self, spec: OpSpec) -> None:
        versions = self._ops.setdefault(spec.name, [])
        if any(v.since == spec.since for v in versions):
            raise ValueError(f"MIL op {spec.name!r} registered twice for {spec.since.name}")
        versions.append(spec)
        versions.sort(key=lambda s: s.since)

    def lookup(self, name: str, target: Target) -> OpSpec:
        versions = self._ops.get(name)
        if not versions:
            raise UnsupportedOpError(f"MIL op {name!r} is not in the op catalogue")
        usable = [v for v in versions if v.since <= target]
        if not usable:
            raise UnsupportedOpError(
                f"MIL op {name!r} needs minimum_deployment_target {versions[0].since.name} or newer "
                f"(the target is {target.name})")
        return usable[-1]

    def __contains__(self, name: str) -> bool:
        return name in self._ops

    def names(self) -> list[str]:
        return sorted(self._ops)

    def versions(self, name: str) -> list[OpSpec]:
        return list(self._ops[name])


CATALOGUE = Catalogue()


def mil_op(name: str, *, inputs: Sequence[In], infer: Callable, since: Target = Target.iOS15,
           domains: Mapping[str, Sequence[dt.DType]] | None = None, n_blocks: int = 0):
    """Register the decorated function as the reference kernel of MIL op `name` (see module doc)."""

    def register(kernel: Callable) -> Callable:
        wants = frozenset(p for p in ("out_types", "run_block", "ctx")
                          if p in inspect.signature(kernel).parameters)
        spec = OpSpec(name=name, inputs=tuple(inputs), since=since, infer=infer, kernel=kernel,
                      domains={k: tuple(v) for k, v in (domains or {}).items()},
                      n_blocks=n_blocks, doc=inspect.getdoc(kernel) or "", kernel_wants=wants)
        CATALOGUE.register(spec)
        return kernel

    return register


class OpContext:
    """What type inference sees of one op: its spec, input types and compile-time values.

    `inputs` maps input names to Vars (lists for variadic inputs); absent optional inputs are missing.
    """

    def __init__(self, spec: OpSpec, inputs: Mapping[str, Any], target: Target, blocks=(), name: str = ""):
        self.spec = spec
        self.inputs = inputs
        self.target = target
        self.blocks = list(blocks)
        self.name = name

    @property
    def op_type(self) -> str:
        return self.spec.name

    def has(self, name: str) -> bool:
        return name in self.inputs

    def var(self, name: str):
        return self.inputs.get(name)

    def type(self, name: str) -> ValueType | None:
        v = self.inputs.get(name)
        return None if v is None else v.type

    def types(self, name: str) -> list[ValueType]:
        return [v.type for v in self.inputs.get(name, [])]

    def shape(self, name: str) -> tuple:
        return self.type(name).shape

    def rank(self, name: str) -> int:
        return len(self.type(name).shape)

    def dtype(self, name: str) -> dt.DType:
        return self.type(name).dtype

    def value(self, name: str, default: Any = _NO_DEFAULT) -> Any:
        """The compile-time value of an input (numpy array, or str), its default if absent, else None.

        Returns None when the input is present but only known at run time."""
        v = self.inputs.get(name)
        if v is None:
            if default is not _NO_DEFAULT:
                return default
            d = self.spec.input(name).default
            return d(self) if callable(d) else d
        if isinstance(v, list):
            vals = [x.value for x in v]
            return None if any(x is None for x in vals) else vals
        return v.value

    def param(self, name: str, default: Any = _NO_DEFAULT) -> Any:
        """Like `value`, but as python values (lists/scalars), the form kernels get for params."""
        return to_python(self.value(name, default))

    def error(self, message: str) -> MILTypeError:
        where = f" {self.name!r}" if self.name else ""
        return MILTypeError(f"MIL op {self.op_type}{where}: {message}")


def to_python(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _dtype_ok(types: Any, dtype: dt.DType, domains: Mapping[str, tuple]) -> tuple[bool, tuple]:
    allowed = domains[types] if isinstance(types, str) else tuple(types)
    return dtype in allowed, allowed


def check_inputs(ctx: OpContext) -> None:
    """Enforce the declaration: names, presence, const-ness, type domains and shared type variables."""
    spec = ctx.spec
    declared = {i.name for i in spec.inputs}
    unknown = set(ctx.inputs) - declared
    if unknown:
        raise ctx.error(f"unknown input(s) {sorted(unknown)}; the op takes {[i.name for i in spec.inputs]}")
    bound: dict[str, dt.DType] = {}
    for decl in spec.inputs:
        given = ctx.inputs.get(decl.name)
        if given is None:
            if not decl.optional:
                raise ctx.error(f"required input {decl.name!r} is missing")
            continue
        vars_ = given if isinstance(given, list) else [given]
        if decl.variadic != isinstance(given, list):
            kind = "a list of values" if decl.variadic else "a single value"
            raise ctx.error(f"input {decl.name!r} takes {kind}")
        for v in vars_:
            _check_one(ctx, decl, v, bound)


def _check_one(ctx: OpContext, decl: In, v, bound: dict) -> None:
    t = v.type
    if decl.const and v.value is None and not _is_compile_time(v):
        raise ctx.error(f"input {decl.name!r} must be a compile-time constant, got the runtime value %{v.name}")
    if decl.types == ANY:
        return
    if decl.types == LIST:
        if not isinstance(t, ListType):
            raise ctx.error(f"input {decl.name!r} must be a list, got {t}")
        return
    if decl.types == STATE:
        if not isinstance(t, StateType):
            raise ctx.error(f"input {decl.name!r} must be a state, got {t}")
        return
    if not isinstance(t, TensorType):
        raise ctx.error(f"input {decl.name!r} must be a tensor, got {t}")
    if isinstance(decl.types, str) and decl.types not in ctx.spec.domains:
        raise ctx.error(f"catalogue bug: type variable {decl.types!r} has no domain")
    ok, allowed = _dtype_ok(decl.types, t.dtype, ctx.spec.domains)
    if not ok:
        raise ctx.error(f"input {decl.name!r} has dtype {t.dtype}, expected one of "
                        f"{[d.name for d in allowed]} (opset {ctx.target.opset})")
    if isinstance(decl.types, str):
        prev = bound.setdefault(decl.types, t.dtype)
        if prev is not t.dtype:
            others = [i.name for i in ctx.spec.inputs if i.types == decl.types]
            raise ctx.error(f"inputs {others} must share one dtype; got {prev} and {t.dtype} "
                            f"(at {decl.name!r})")


def _is_compile_time(v) -> bool:
    """Outputs of `constexpr_*` ops are compile-time values too (their inputs are all consts)."""
    return v.op is not None and v.op.op_type.startswith("constexpr_")


def infer_types(ctx: OpContext) -> list[ValueType]:
    check_inputs(ctx)
    out = ctx.spec.infer(ctx)
    if isinstance(out, (TensorType, ListType, TupleType, StateType)):
        return [out]
    return list(out)


def call_kernel(ctx: OpContext, values: Mapping[str, Any], out_types: Sequence[ValueType] = (),
                run_block: Callable | None = None) -> Any:
    """Run an op's kernel on runtime values (see the module doc for the convention)."""
    spec = ctx.spec
    kwargs: dict[str, Any] = {}
    for decl in spec.inputs:
        if decl.name in values:
            val = values[decl.name]
            if decl.param:
                val = _param_value(val)
        else:
            d = decl.default
            val = d(ctx) if callable(d) else d
            if decl.param:
                val = to_python(val)
        kwargs[decl.name] = val
    if "out_types" in spec.kernel_wants:
        kwargs["out_types"] = list(out_types)
    if "run_block" in spec.kernel_wants:
        kwargs["run_block"] = run_block
    if "ctx" in spec.kernel_wants:
        kwargs["ctx"] = ctx
    return spec.kernel(**kwargs)


def _param_value(val: Any) -> Any:
    import torch

    if isinstance(val, torch.Tensor):
        return val.tolist()
    if isinstance(val, list):
        return [_param_value(v) for v in val]
    return to_python(val)
