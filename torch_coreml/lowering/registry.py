"""The lowering registry: one entry per aten `OpOverload`, arguments bound by schema name.

    @lowering(aten.leaky_relu.default)
    def leaky_relu(ctx, self, negative_slope=0.01):
        "leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor"
        return ctx.b.op("leaky_relu", x=self, alpha=ctx.float_scalar(negative_slope))

A lowering receives the `LoweringContext` and the op's arguments as keywords named like the ATen
schema (a name that is a Python keyword gets a trailing underscore: `from` → `from_`). Tensors arrive
as MIL Vars, lists of tensors as lists of Vars, symbolic ints as int32 scalar Vars; everything else is
a plain Python value with the schema default applied. It returns a Var, or a tuple for multi-output
ops. To refuse a node it raises `ctx.unsupported(reason)`; the same function is the support check
(dry run), so the check can never disagree with the lowering.

Plain Python callables that FX records for symbolic-int arithmetic (`operator.add`, `operator.floordiv`,
...) have no schema; they are registered the same way and receive their operands positionally as `a`, `b`.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import TorchCoreMLError


@dataclass(frozen=True)
class LoweringEntry:
    target: torch._ops.OpOverload
    fn: Callable[..., Any]
    # Keep the op whole instead of decomposing it (only meaningful for ops torch would decompose).
    keep_whole: bool = True


class LoweringRegistry:
    def __init__(self):
        self._entries: dict[Any, LoweringEntry] = {}

    def add(self, entry: LoweringEntry, *, replace: bool = False) -> None:
        if entry.target in self._entries and not replace:
            raise TorchCoreMLError(f"a lowering for {entry.target} is already registered "
                                   "(pass replace=True to override it)")
        self._entries[entry.target] = entry

    def get(self, target) -> LoweringEntry | None:
        return self._entries.get(target)

    def __contains__(self, target) -> bool:
        return target in self._entries

    def targets(self) -> list:
        return list(self._entries)


REGISTRY = LoweringRegistry()


def lowering(*targets, keep_whole: bool = True, replace: bool = False):
    """Register the decorated function as the lowering of each `OpOverload` (or packet) in targets."""

    def register(fn):
        for t in targets:
            overloads = [getattr(t, name) for name in t.overloads()] \
                if isinstance(t, torch._ops.OpOverloadPacket) else [t]
            for ov in overloads:
                REGISTRY.add(LoweringEntry(ov, fn, keep_whole), replace=replace)
        return fn

    return register


def register_lowering(target, fn: Callable | None = None, *, replace: bool = False):
    """Public: add a lowering for a user's own op (e.g. a `torch.library` custom op).

    Usable as `register_lowering(torch.ops.mylib.op.default, fn)` or as a decorator.
    """
    if fn is None:
        return lowering(target, replace=replace)
    lowering(target, replace=replace)(fn)
    return fn


def python_name(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


_PLAIN_NAMES = ("a", "b")
# Higher-order ops have no schema; their lowerings take the positional arguments under these names.
_HIGHER_ORDER_NAMES = {"cond": ("pred", "true_fn", "false_fn", "operands"),
                       "while_loop": ("cond_fn", "body_fn", "carried_inputs", "additional_inputs")}


def bind_arguments(target, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Bind FX node args to the op schema by name, filling schema defaults."""
    schema = getattr(target, "_schema", None)
    if isinstance(target, torch._ops.HigherOrderOperator) and target.name() in _HIGHER_ORDER_NAMES:
        return {**dict(zip(_HIGHER_ORDER_NAMES[target.name()], args)), **kwargs}
    if schema is None and callable(target) and not kwargs and len(args) <= len(_PLAIN_NAMES):
        return dict(zip(_PLAIN_NAMES, args))  # operator.add(a, b) and friends on symbolic ints
    if schema is None:
        raise TorchCoreMLError(f"{target} has no schema to bind its arguments to")
    bound: dict[str, Any] = {}
    positional = [a for a in schema.arguments if not a.kwarg_only]
    if len(args) > len(positional):
        raise TorchCoreMLError(f"{target}: {len(args)} positional arguments given, "
                               f"the schema takes {len(positional)}")
    for arg, value in zip(positional, args):
        bound[arg.name] = value
    for name, value in kwargs.items():
        if not any(a.name == name for a in schema.arguments):
            raise TorchCoreMLError(f"{target}: unknown argument {name!r}")
        bound[name] = value
    for arg in schema.arguments:
        if arg.name not in bound:
            if arg.has_default_value():
                bound[arg.name] = arg.default_value
            elif arg.type.kind() == "OptionalType":
                bound[arg.name] = None
            else:
                raise TorchCoreMLError(f"{target}: required argument {arg.name!r} is missing")
    return {python_name(k): v for k, v in bound.items()}
