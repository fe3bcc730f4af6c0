"""Support check = a dry run of the real lowering on a scratch function.

Tensor arguments (real, fake or FX-node metadata) become inputs of a throwaway MIL function with the
same types; symbolic ints become int32 scalar inputs. The lowering then runs exactly as in a
conversion. Used by the decomposition table (keep an op whole or decompose it) and by the torch.compile
partitioner (delegate a node or leave it to PyTorch).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch

from ..mil import dtypes as dt
from ..mil.builder import new_function
from ..mil.program import Operation, Var
from ..mil.targets import Target
from ..mil.types import TensorType
from .context import LoweringContext, var_type_from_meta
from .registry import REGISTRY, bind_arguments

log = logging.getLogger(__name__)


def accepts(target, args: tuple, kwargs: dict, *, mil_target: Target, float_dtype: dt.DType,
            constants: Mapping[str, torch.Tensor] | None = None) -> bool:
    ok, reason = try_lowering(target, args, kwargs, mil_target=mil_target, float_dtype=float_dtype,
                              constants=constants)
    if not ok:
        log.debug("dry run of %s refused: %s", target, reason)
    return ok


def try_lowering(target, args: tuple, kwargs: dict, *, mil_target: Target, float_dtype: dt.DType,
                 constants: Mapping[str, torch.Tensor] | None = None) -> tuple[bool, str]:
    """(True, "") when our lowering accepts this call, else (False, reason).

    `constants` maps placeholder names to the tensors that feed them (parameters, buffers): a float
    one then reaches the lowering as a constant, as in the conversion, so lowerings that need constant
    weights (MIL's lstm, ...) are judged right. Its data is shared, not copied."""
    entry = REGISTRY.get(target)
    if entry is None:
        return False, "no lowering for this op"
    fn, b = new_function("dry_run", {}, mil_target)
    ctx = LoweringContext(b, float_dtype)
    counter = [0]

    def to_var(x: Any) -> Any:
        if isinstance(x, torch.fx.Node):
            if constants and x.op == "placeholder" and x.name in constants \
                    and constants[x.name].dtype == torch.float32:
                return _constant(b, constants[x.name], ctx)
            x = x.meta.get("val")
        if isinstance(x, torch.Tensor):
            return _input(fn, b, var_type_from_meta(x, ctx), counter)
        if isinstance(x, torch.SymInt) and x.node.maybe_as_int() is None:
            return _input(fn, b, TensorType(dt.int32, ()), counter)
        if isinstance(x, (list, tuple)):
            return type(x)(to_var(v) for v in x)
        return x

    try:
        bound = bind_arguments(target, to_var(tuple(args)), {k: to_var(v) for k, v in kwargs.items()})
        entry.fn(ctx, **bound)
    except Exception as e:  # any failure means "not supported"; the reason is kept for reports
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def _constant(b, value: torch.Tensor, ctx: LoweringContext) -> Var:
    # fp32 data under the program's float type: the deferred-fp16 form when that is fp16.
    out = Var(b.names.fresh("weight"), TensorType(ctx.float_dtype, tuple(value.shape)))
    b.block.append(Operation("const", b.names.fresh("weight_op"), {}, [out],
                             attributes={"val": value.detach().numpy()}))
    return out


def _input(fn, b, ttype: TensorType, counter: list) -> Var:
    counter[0] += 1
    v = Var(b.names.fresh(f"arg{counter[0]}"), ttype)
    fn.inputs.append(v)
    return v
