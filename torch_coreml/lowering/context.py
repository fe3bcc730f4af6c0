"""What a lowering function sees: the builder, the node, and the conversions done once for all ops.

Dtype rules live here and nowhere else:
- torch float types become the program's compute precision (fp16 or fp32); MIL computes one float type.
- int64 (torch's index type) becomes int32, MIL's integer type; bool stays bool.
- `promote` implements torch's type promotion on MIL types (bool < int < float) with Python scalars
  wrapped into consts of the promoted type, so elementwise lowerings are one line.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..errors import ConversionError
from ..mil import dtypes as dt
from ..mil.builder import Builder
from ..mil.program import Var
from ..mil.types import Symbol, TensorType


class Unsupported(ConversionError):
    """Raised by a lowering that cannot express this particular node."""


_CATEGORY = {"bool": 0, "int": 1, "uint": 1, "float": 2}


class LoweringContext:
    def __init__(self, builder: Builder, float_dtype: dt.DType = dt.fp32, node=None):
        self.b = builder
        self.float_dtype = float_dtype
        self.node = node  # the FX node being lowered (None during a dry run outside a graph)
        # Set by the graph walker: lower_subgraph(graph_module, operands, builder) -> output values,
        # for higher-order ops (torch.cond) whose branches are FX subgraphs.
        self.lower_subgraph = None

    @property
    def target(self):
        return self.b.target

    # -- errors ---------------------------------------------------------------------------------
    def unsupported(self, reason: str) -> Unsupported:
        return Unsupported(reason)

    # -- dtypes ---------------------------------------------------------------------------------
    def mil_dtype(self, torch_dtype: torch.dtype | None) -> dt.DType:
        """The MIL type a torch dtype computes in inside this program."""
        if torch_dtype is None or torch_dtype.is_floating_point:
            return self.float_dtype
        if torch_dtype == torch.bool:
            return dt.bool_
        if torch_dtype in (torch.int64, torch.int32, torch.int16, torch.uint16, torch.uint32):
            return dt.int32
        if torch_dtype in (torch.int8, torch.uint8):
            # 8-bit integer tensors compute in int32 before iOS17 (most ops lack 8-bit domains).
            return dt.int32
        if torch_dtype.is_complex:
            raise self.unsupported(f"complex dtype {torch_dtype} has no MIL equivalent")
        raise self.unsupported(f"dtype {torch_dtype} has no MIL equivalent")

    def out_dtype(self, index: int | None = None) -> dt.DType | None:
        """The MIL dtype of the node's (index-th) output, from FX metadata, when there is a node."""
        val = self.node.meta.get("val") if self.node is not None else None
        if isinstance(val, (tuple, list)) and index is not None:
            val = val[index]
        if isinstance(val, torch.Tensor):
            return self.mil_dtype(val.dtype)
        return None

    def cast(self, x: Var, dtype: dt.DType) -> Var:
        if x.dtype is dtype:
            return x
        if x.is_const:
            return self.b.const(x.value.astype(dtype.numpy) if dtype is not dt.string else x.value, dtype)
        return self.b.op("cast", x=x, dtype=dtype.name)

    def const(self, value: Any, dtype: dt.DType | None = None) -> Var:
        return self.b.const(value, dtype)

    def scalar_dtype(self, value: Any) -> dt.DType:
        if isinstance(value, bool):
            return dt.bool_
        if isinstance(value, int):
            return dt.int32
        return self.float_dtype

    def result_dtype(self, *values: Any) -> dt.DType:
        """torch's promotion on MIL types: tensors decide within a category, scalars raise it."""
        tensors = [v.dtype for v in values if isinstance(v, Var)]
        scalars = [self.scalar_dtype(v) for v in values if not isinstance(v, Var) and v is not None]
        best = max(tensors, key=lambda d: (_CATEGORY[d.kind], d.bits)) if tensors else None
        for s in scalars:
            if best is None or _CATEGORY[s.kind] > _CATEGORY[best.kind]:
                best = s
        return best or self.float_dtype

    def promote(self, *values: Any, dtype: dt.DType | None = None) -> list[Var]:
        """Cast tensors and wrap scalars to one common dtype (torch's rules unless `dtype` given)."""
        dtype = dtype or self.result_dtype(*values)
        out = []
        for v in values:
            if isinstance(v, Var):
                out.append(self.cast(v, dtype))
            else:
                if dtype.is_int and not -2**31 <= int(v) < 2**31:
                    raise self.unsupported(f"the integer {v} does not fit MIL's int32")
                out.append(self.b.const(_scalar(v, dtype), dtype))
        return out

    # -- shapes ---------------------------------------------------------------------------------
    def shape_var(self, x: Var) -> Var:
        """x's shape as an int32 tensor: a const when static, a `shape` op otherwise."""
        if all(isinstance(d, int) for d in x.shape):
            return self.b.const(list(x.shape), dt.int32)
        return self.b.op("shape", x=x)

    def int_list(self, items: Sequence[Any]) -> Var | list[int]:
        """A list of ints and int32 scalar Vars (symbolic sizes) as a python list or an int32 tensor."""
        if all(isinstance(i, int) for i in items):
            return [int(i) for i in items]
        parts = [self.b.op("expand_dims", x=self.cast(i, dt.int32), axes=[0]) if isinstance(i, Var)
                 else self.b.const([int(i)], dt.int32) for i in items]
        return self.b.op("concat", values=parts, axis=0)


def _scalar(value: Any, dtype: dt.DType):
    import numpy as np

    if isinstance(value, Var):
        return value
    if dtype is dt.bool_:
        return np.bool_(value)
    if dtype.is_float:
        value = float(value)
        if np.isfinite(value):
            # A finite fp32 scalar (e.g. a mask's finfo(float32).min) must stay finite in an fp16
            # program: as -inf it turns `0 * min` into NaN, which the torch model never produces.
            limit = float(np.finfo(dtype.numpy).max)
            value = min(max(value, -limit), limit)
        return np.asarray(value, dtype=dtype.numpy)
    return np.asarray(int(value), dtype=dtype.numpy)


def var_type_from_meta(meta: torch.Tensor, ctx: LoweringContext, symbols: dict | None = None) -> TensorType:
    """MIL type for a (fake) tensor: dtype per the context's rules, symbolic sizes as Symbols."""
    shape = []
    for s in meta.shape:
        # `int(s)` on a SymInt would specialize it (a guard fixing the dynamic dim to its example
        # value), so only sizes the shape environment already knows to be constant are read.
        static = s if isinstance(s, int) else (s.node.maybe_as_int() if hasattr(s, "node") else None)
        if static is not None:
            shape.append(int(static))
        else:
            name = str(s)
            shape.append(Symbol(name) if symbols is None else symbols.setdefault(name, Symbol(name)))
    return TensorType(ctx.mil_dtype(meta.dtype), tuple(shape))
