"""An explicit builder: every op is added through a `Builder` bound to one block.

    fn, b = new_function("main", {"x": tensor("fp32", (1, 4))}, Target.iOS17)
    y = b.op("relu", x=fn.inputs[0])
    fn.block.outputs = [y]

`b.op` looks the op up in the catalogue for the builder's target, type-checks the inputs against the
declaration, runs type inference and appends the op. Python and numpy values passed as inputs become
`const` ops. No global state: nested blocks get their own builder via `b.nested(block)`.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import MILTypeError
from . import dtypes as dt
from .ops import CATALOGUE
from .ops.spec import OpContext, infer_types
from .program import Block, Function, Operation, Var
from .targets import Target, parse_target
from .types import TensorType, ValueType

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words the MIL text format reserves; a name equal to one gets a suffix.
RESERVED = frozenset("""any bool program func tensor list dict tuple true false string bf16 fp16 fp32
fp64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 state""".split())


def sanitize_name(name: str) -> str:
    """Map any string onto a valid MIL identifier."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(name)) or "v"
    if name[0].isdigit():
        name = "var_" + name
    if name in RESERVED:
        name += "_"
    return name


class NameScope:
    """Hands out unique, valid names within one function (nested blocks share the scope)."""

    def __init__(self):
        self._used: set[str] = set()
        self._counters: dict[str, int] = {}

    def reserve(self, name: str) -> str:
        if name in self._used or not _IDENT.match(name):
            raise ValueError(f"name {name!r} is taken or is not a valid MIL identifier")
        self._used.add(name)
        return name

    def try_reserve(self, name: str) -> bool:
        """Claim `name` if it is free and valid; False otherwise."""
        if name in self._used or not _IDENT.match(name):
            return False
        self._used.add(name)
        return True

    def fresh(self, hint: str = "v") -> str:
        base = sanitize_name(hint)
        if base not in self._used:
            self._used.add(base)
            return base
        n = self._counters.get(base, 0)
        while f"{base}_{n}" in self._used:
            n += 1
        self._counters[base] = n + 1
        name = f"{base}_{n}"
        self._used.add(name)
        return name


def const_value(value: Any, dtype: dt.DType | str | None = None, *, defer_cast: bool = False
                ) -> tuple[Any, TensorType]:
    """Normalize a python/numpy/torch value into (stored value, tensor type).

    int64 becomes int32 and fp64 becomes fp32 unless `dtype` says otherwise: MIL programs compute in
    32-bit, and Core ML stores 64-bit values only inline.

    `defer_cast=True` keeps fp32 data for an fp16 const as it is (see dtypes.py, "deferred fp16"):
    a model's weights are then shared with the torch module instead of copied."""
    if isinstance(dtype, str):
        dtype = dt.from_name(dtype)
    if isinstance(value, str):
        return value, TensorType(dt.string, ())
    import torch

    if isinstance(value, torch.Tensor):
        mil = dtype or dt.from_torch(value.dtype)
        if defer_cast and mil is dt.fp16 and value.dtype == torch.float32:
            arr = value.detach().cpu().contiguous().numpy()  # shares memory with the tensor
            return arr, TensorType(dt.fp16, arr.shape)
        value = dt.torch_to_numpy(value, mil)
        dtype = mil
    arr = np.asarray(value)
    if arr.dtype.kind in ("U", "S", "O"):
        return arr.astype(object), TensorType(dt.string, arr.shape)
    if dtype is None:
        if arr.dtype == np.int64 or (arr.dtype.kind == "i" and arr.dtype.itemsize > 4):
            dtype = dt.int32
        elif arr.dtype == np.float64:
            dtype = dt.fp32
        else:
            dtype = dt.from_numpy(arr.dtype)
    if dtype.is_int and not dtype.is_sub_byte and arr.dtype.kind in "iu" and arr.size:
        info = np.iinfo(dtype.numpy)
        if arr.min() < info.min or arr.max() > info.max:
            raise ValueError(f"integer constant out of {dtype} range: [{arr.min()}, {arr.max()}]")
    if arr.dtype != dtype.numpy:
        arr = arr.astype(dtype.numpy)
    return arr, TensorType(dtype, arr.shape)


class Builder:
    def __init__(self, block: Block, target: Target | str, names: NameScope | None = None):
        self.block = block
        self.target = parse_target(target)
        self.names = names or NameScope()

    def nested(self, block: Block) -> "Builder":
        return Builder(block, self.target, self.names)

    # -- consts ---------------------------------------------------------------------------------
    def const(self, value: Any, dtype: dt.DType | str | None = None, name: str | None = None, *,
              defer_cast: bool = False) -> Var:
        stored, ttype = const_value(value, dtype, defer_cast=defer_cast)
        out = Var(self.names.fresh(name or "const"), ttype)
        op = Operation("const", self.names.fresh((name or "const") + "_op"), {}, [out],
                       attributes={"val": stored})
        self.block.append(op)
        return out

    def as_var(self, value: Any) -> Var:
        return value if isinstance(value, Var) else self.const(value)

    # -- ops ------------------------------------------------------------------------------------
    def op(self, op_type: str, *, name: str | None = None, blocks: Sequence[Block] = (),
           **inputs: Any) -> Any:
        """Add one op; returns its output Var, or a tuple of Vars for multi-output ops."""
        outs = self.add_op(op_type, inputs, name=name, blocks=blocks).outputs
        return outs[0] if len(outs) == 1 else tuple(outs)

    def add_op(self, op_type: str, inputs: Mapping[str, Any], *, name: str | None = None,
               blocks: Sequence[Block] = (), out_names: Sequence[str] | None = None) -> Operation:
        if op_type == "const":
            raise MILTypeError("use Builder.const to add a const op")
        spec = CATALOGUE.lookup(op_type, self.target)
        bound = self._bind(spec, inputs)
        op_name = self.names.fresh(name or op_type)
        ctx = OpContext(spec, bound, self.target, blocks, name=op_name)
        types = infer_types(ctx)
        if out_names is None:
            out_names = [op_name] if len(types) == 1 else [f"{op_name}_{i}" for i in range(len(types))]
            outputs = [Var(n if i == 0 and len(types) == 1 else self.names.fresh(n), t)
                       for i, (n, t) in enumerate(zip(out_names, types))]
        else:
            outputs = [Var(self.names.fresh(n), t) for n, t in zip(out_names, types)]
        op = Operation(op_type, op_name + "_op" if len(types) == 1 else op_name, bound, outputs,
                       blocks=list(blocks))
        for b in op.blocks:
            b.parent = op
        self.block.append(op)
        return op

    def _bind(self, spec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Vars as given; Python numbers become consts, taking the float dtype already bound to their
        type variable (so `epsilon=1e-5` next to an fp16 `x` is an fp16 const)."""
        decls = {i.name: i for i in spec.inputs}
        var_dtypes: dict[str, dt.DType] = {}
        for key, val in inputs.items():
            decl = decls.get(key)
            if isinstance(val, Var) and decl is not None and isinstance(decl.types, str) \
                    and isinstance(val.type, TensorType):
                var_dtypes.setdefault(decl.types, val.dtype)
        bound: dict[str, Any] = {}
        for key, val in inputs.items():
            if val is None:
                continue  # an omitted optional input
            decl = decls.get(key)
            if decl is not None and decl.variadic:
                bound[key] = [self.as_var(v) for v in val]
                continue
            like = var_dtypes.get(decl.types) if decl is not None and isinstance(decl.types, str) else None
            if like is not None and like.is_float and isinstance(val, (int, float)) and not isinstance(val, bool):
                bound[key] = self.const(val, like)
            else:
                bound[key] = self.as_var(val)
        return bound

    # -- control flow ---------------------------------------------------------------------------
    def cond(self, pred: Var, then_fn: Callable[["Builder"], Sequence[Var]],
             else_fn: Callable[["Builder"], Sequence[Var]]) -> Any:
        blocks = []
        for fn in (then_fn, else_fn):
            blk = Block()
            blk.outputs = list(fn(self.nested(blk)))
            blocks.append(blk)
        return self.op("cond", pred=pred, blocks=blocks)

    def while_loop(self, loop_vars: Sequence[Var],
                   cond_fn: Callable[["Builder", list[Var]], Var],
                   body_fn: Callable[["Builder", list[Var]], Sequence[Var]]) -> Any:
        blocks = []
        for fn in (cond_fn, body_fn):
            blk = Block([Var(self.names.fresh(v.name + "_x"), v.type) for v in loop_vars])
            res = fn(self.nested(blk), list(blk.inputs))
            blk.outputs = [res] if isinstance(res, Var) else list(res)
            blocks.append(blk)
        return self.op("while_loop", loop_vars=list(loop_vars), blocks=blocks)


def new_function(name: str, inputs: Mapping[str, ValueType], target: Target | str
                 ) -> tuple[Function, Builder]:
    """Create a function with the given inputs (in order) and a builder for its top block."""
    target = parse_target(target)
    names = NameScope()
    in_vars = [Var(names.reserve(n), t) for n, t in inputs.items()]
    fn = Function(name, in_vars, Block(), target)
    return fn, Builder(fn.block, target, names)
