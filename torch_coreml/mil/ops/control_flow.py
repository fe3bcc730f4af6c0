"""Control flow and list ops: `cond`, `while_loop`, `select`, and `make_list` with its `list_*` ops.

Nested blocks: `cond` owns two blocks (taken, not taken) and `while_loop` two (condition, body); the
Builder's `cond` / `while_loop` helpers build them. Kernels run them through `run_block(index, values)`.

List runtime values are python lists of tensors. List ops are functional: they return a new python list
and never change their input, so one list value may safely back several SSA names. A kernel whose one
output is a list returns it inside a 1-tuple, so that a caller never mistakes the list for several
outputs. An element that was never written holds zeros when the element shape is static, else None.
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..types import ListType, Symbol, TensorType, broadcast_shapes
from .spec import ANY, LIST, In, mil_op

_LIST_ELEMS = (dt.fp16, dt.fp32, dt.bool_, dt.int32)


# -- type helpers ---------------------------------------------------------------------------------
def _fits(value: TensorType, slot: TensorType) -> bool:
    """Whether a tensor of type `value` may be stored where `slot` is expected (symbols match any dim)."""
    if not isinstance(value, TensorType) or not isinstance(slot, TensorType):
        return value == slot
    if value.dtype is not slot.dtype or value.rank != slot.rank:
        return False
    return all(isinstance(s, Symbol) or v == s for v, s in zip(value.shape, slot.shape))


def _join(ctx, a, b, what: str):
    """The type covering both `a` and `b`: dims that differ become fresh symbols."""
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        if a.dtype is not b.dtype or a.rank != b.rank:
            raise ctx.error(f"{what}: {a} and {b} differ in dtype or rank")
        dims = []
        for x, y in zip(a.shape, b.shape):
            if x == y:
                dims.append(x)
            elif isinstance(x, int) and isinstance(y, int):
                raise ctx.error(f"{what}: {a} and {b} have different static shapes")
            else:
                dims.append(Symbol.fresh())
        return TensorType(a.dtype, tuple(dims))
    if isinstance(a, ListType) and isinstance(b, ListType):
        elem = _join(ctx, a.elem, b.elem, what)
        return ListType(elem, a.length if a.length == b.length else None)
    if a != b:
        raise ctx.error(f"{what}: {a} and {b} differ")
    return a


def _list_type(ctx, name: str = "ls") -> ListType:
    return ctx.type(name)


# -- cond -----------------------------------------------------------------------------------------
def _infer_cond(ctx):
    if len(ctx.blocks) != 2:
        raise ctx.error(f"needs 2 blocks (taken / not taken), got {len(ctx.blocks)}")
    if any(isinstance(d, int) and d != 1 for d in ctx.shape("pred")):
        raise ctx.error(f"input 'pred' must hold one element, got shape {ctx.shape('pred')}")
    then_out, else_out = ctx.blocks[0].outputs, ctx.blocks[1].outputs
    if len(then_out) != len(else_out):
        raise ctx.error(f"the branches return {len(then_out)} and {len(else_out)} values")
    return [_join(ctx, a.type, b.type, f"branch output {i}")
            for i, (a, b) in enumerate(zip(then_out, else_out))]


@mil_op("cond", inputs=[In("pred", (dt.bool_,))], infer=_infer_cond, n_blocks=2)
def cond(pred, run_block):
    """If-then-else: runs block 0 when the one-element `pred` is true, else block 1, and returns the
    outputs of the block that ran."""
    return tuple(run_block(0 if bool(pred.reshape(())) else 1, []))


# -- while_loop -----------------------------------------------------------------------------------
def _infer_while(ctx):
    if len(ctx.blocks) != 2:
        raise ctx.error(f"needs 2 blocks (condition, body), got {len(ctx.blocks)}")
    loop_vars = ctx.var("loop_vars")
    cond_blk, body = ctx.blocks
    for blk, what in ((cond_blk, "condition"), (body, "body")):
        if len(blk.inputs) != len(loop_vars):
            raise ctx.error(f"the {what} block takes {len(blk.inputs)} inputs for "
                            f"{len(loop_vars)} loop_vars")
        for v, b in zip(loop_vars, blk.inputs):
            if not _fits(v.type, b.type):
                raise ctx.error(f"loop_vars value %{v.name}: {v.type} does not fit the {what} block "
                                f"input %{b.name}: {b.type}")
    if len(cond_blk.outputs) != 1:
        raise ctx.error(f"the condition block must return one bool, got {len(cond_blk.outputs)} values")
    c = cond_blk.outputs[0].type
    if not isinstance(c, TensorType) or c.dtype is not dt.bool_:
        raise ctx.error(f"the condition block must return a bool tensor, got {c}")
    if len(body.outputs) != len(loop_vars):
        raise ctx.error(f"the body returns {len(body.outputs)} values for {len(loop_vars)} loop_vars")
    for i, (out, b) in enumerate(zip(body.outputs, body.inputs)):
        if not _fits(out.type, b.type):
            raise ctx.error(f"loop_vars[{i}] changes type in the body: {b.type} -> {out.type} "
                            "(give the loop variable symbolic dims where its shape changes)")
    return [b.type for b in body.inputs]


@mil_op("while_loop", inputs=[In("loop_vars", ANY, variadic=True)], infer=_infer_while, n_blocks=2)
def while_loop(loop_vars, run_block):
    """Runs the body block (1) on the loop variables while the condition block (0) returns true;
    returns the final loop variables (the inputs themselves if the condition is false at once)."""
    values = list(loop_vars)
    while bool(run_block(0, values)[0].reshape(())):
        values = list(run_block(1, values))
    return tuple(values)


# -- select ---------------------------------------------------------------------------------------
def _infer_select(ctx):
    try:
        shape = broadcast_shapes(ctx.shape("cond"), ctx.shape("a"), ctx.shape("b"))
    except ValueError as e:
        raise ctx.error(str(e)) from None
    return TensorType(ctx.dtype("a"), shape)


@mil_op("select", domains={"T": _LIST_ELEMS},
        inputs=[In("cond", (dt.bool_,)), In("a", "T"), In("b", "T")], infer=_infer_select)
def select(cond, a, b):
    """Elementwise choice: `a` where `cond` is true, else `b` (all three broadcast together)."""
    return torch.where(cond, a, b)


# -- lists ----------------------------------------------------------------------------------------
def _infer_make_list(ctx):
    name = ctx.param("dtype")
    if name not in {d.name for d in _LIST_ELEMS}:
        raise ctx.error(f"input 'dtype' must be one of {[d.name for d in _LIST_ELEMS]}, got {name!r}")
    dims = []
    for i, v in enumerate(ctx.var("elem_shape")):
        val = v.value
        if v.type.rank != 0:
            raise ctx.error(f"input 'elem_shape' entry {i} must be a scalar, got {v.type}")
        dims.append(Symbol(val) if isinstance(val, str) else int(val))
    length = None
    if not ctx.param("dynamic_length"):
        n = ctx.param("init_length")
        length = Symbol.fresh() if n is None else int(n)
    return ListType(TensorType(dt.from_name(name), tuple(dims)), length)


@mil_op("make_list", infer=_infer_make_list, inputs=[
    In("init_length", (dt.int32,), optional=True, default=1),
    In("dynamic_length", (dt.bool_,), const=True, optional=True, default=True, param=True),
    In("elem_shape", (dt.int32, dt.string), const=True, variadic=True),
    In("dtype", (dt.string,), const=True, optional=True, default="fp32", param=True)])
def make_list(init_length, dynamic_length, elem_shape, dtype, out_types):
    """A new list of `init_length` elements of dtype `dtype` and shape `elem_shape` (string entries
    are named symbolic dims). A `dynamic_length` list grows when written past its end."""
    n = int(init_length.reshape(()) if isinstance(init_length, torch.Tensor) else init_length)
    return ([_blank(out_types[0])] * n,)


@mil_op("list_length", inputs=[In("ls", LIST)], infer=lambda ctx: TensorType(dt.int32, ()))
def list_length(ls):
    """The current number of elements of list `ls`."""
    return torch.tensor(len(ls), dtype=torch.int32)


def _check_elem(ctx, value_type: TensorType, what: str):
    elem = _list_type(ctx).elem
    if not _fits(value_type, elem):
        raise ctx.error(f"input {what!r} of type {value_type} does not match the list element type {elem}")


def _infer_list_write(ctx):
    _check_elem(ctx, ctx.type("value"), "value")
    if ctx.rank("index") != 0:
        raise ctx.error(f"input 'index' must be a scalar, got {ctx.type('index')}")
    return ctx.type("ls")


def _blank(list_type: ListType):
    """The value of a never-written element: zeros when the element shape is static, else None."""
    elem = list_type.elem
    if all(isinstance(d, int) for d in elem.shape):
        return torch.zeros(elem.shape, dtype=elem.dtype.torch)
    return None


def _grow(ls: list, n: int, list_type: ListType) -> list:
    return ls + [_blank(list_type)] * (n - len(ls)) if n > len(ls) else ls


@mil_op("list_write", domains={"T": _LIST_ELEMS}, infer=_infer_list_write,
        inputs=[In("ls", LIST), In("index", (dt.int32,)), In("value", "T")])
def list_write(ls, index, value, out_types):
    """A copy of `ls` with element `index` set to `value` (writing past the end grows the list)."""
    i = int(index)
    out = _grow(list(ls), i + 1, out_types[0])
    out[i] = value
    return (out,)


def _read(ls: list, i: int) -> torch.Tensor:
    if not 0 <= i < len(ls):
        raise IndexError(f"list index {i} is out of range for a list of length {len(ls)}")
    if ls[i] is None:
        raise ValueError(f"list element {i} is read before it was written")
    return ls[i]


def _infer_list_read(ctx):
    if ctx.rank("index") != 0:
        raise ctx.error(f"input 'index' must be a scalar, got {ctx.type('index')}")
    return _list_type(ctx).elem


@mil_op("list_read", infer=_infer_list_read, inputs=[In("ls", LIST), In("index", (dt.int32,))])
def list_read(ls, index):
    """Element `index` of list `ls`."""
    return _read(ls, int(index))


def _infer_list_gather(ctx):
    if ctx.rank("indices") != 1:
        raise ctx.error(f"input 'indices' must be a vector, got {ctx.type('indices')}")
    elem = _list_type(ctx).elem
    return TensorType(elem.dtype, (ctx.shape("indices")[0],) + elem.shape)


@mil_op("list_gather", infer=_infer_list_gather, inputs=[In("ls", LIST), In("indices", (dt.int32,))])
def list_gather(ls, indices, out_types):
    """The elements of `ls` at `indices`, stacked along a new leading axis."""
    picked = [_read(ls, int(i)) for i in indices.tolist()]
    if picked:
        return torch.stack(picked)
    shape = out_types[0].shape
    if not all(isinstance(d, int) for d in shape):
        raise ValueError("list_gather with no indices needs a static element shape")
    return torch.zeros(shape, dtype=out_types[0].dtype.torch)


def _infer_list_scatter(ctx):
    if ctx.rank("indices") != 1 or ctx.rank("value") < 1:
        raise ctx.error(f"input 'indices' must be a vector and 'value' at least rank 1, got "
                        f"{ctx.type('indices')} and {ctx.type('value')}")
    n, k = ctx.shape("indices")[0], ctx.shape("value")[0]
    if isinstance(n, int) and isinstance(k, int) and n != k:
        raise ctx.error(f"cannot scatter {k} values (input 'value') to {n} indices (input 'indices')")
    _check_elem(ctx, TensorType(ctx.dtype("value"), ctx.shape("value")[1:]), "value")
    return ctx.type("ls")


@mil_op("list_scatter", domains={"T": _LIST_ELEMS}, infer=_infer_list_scatter,
        inputs=[In("ls", LIST), In("indices", (dt.int32,)), In("value", "T")])
def list_scatter(ls, indices, value, out_types):
    """A copy of `ls` with element `indices[j]` set to `value[j]` for every j (grows as needed)."""
    idx = [int(i) for i in indices.tolist()]
    out = _grow(list(ls), max(idx, default=-1) + 1, out_types[0])
    for j, i in enumerate(idx):
        out[i] = value[j]
    return (out,)
