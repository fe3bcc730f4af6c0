"""Linear algebra ops: `linear`, `matmul` and the restricted `einsum`.

iOS17 loosened the dtype rules: `linear` weights and one const `matmul` operand may have a dtype other
than the activation's. Kernels compute in the promoted dtype; the runtime casts to the inferred one.
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType, broadcast_shapes, is_static_dim
from .spec import In, mil_op

_T = (dt.fp16, dt.fp32, dt.int32)


def _scalar(v):
    # Workaround: dtypes.numpy_to_torch turns a 0-d const into shape [1] (np.ascontiguousarray), so a
    # scalar param can arrive as a one-element list. Remove once that is fixed.
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def _promote(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Cast tensors to one common dtype so torch kernels accept mixed fp16/fp32/int32 operands."""
    common = tensors[0].dtype
    for t in tensors[1:]:
        common = torch.promote_types(common, t.dtype)
    return [t.to(common) for t in tensors]


def _mismatch(a, b) -> bool:
    return is_static_dim(a) and is_static_dim(b) and a != b


def _broadcast(ctx, *shapes):
    try:
        return broadcast_shapes(*shapes)
    except ValueError as e:
        raise ctx.error(str(e)) from None


# ---------------------------------------------------------------------------------------------- linear

def _infer_linear(ctx):
    x, w = ctx.shape("x"), ctx.shape("weight")
    if len(x) < 1:
        raise ctx.error(f"input 'x' must have rank >= 1, got shape {x}")
    if len(w) != 2:
        raise ctx.error(f"input 'weight' must be rank 2 [D_out, D_in], got shape {w}")
    if _mismatch(x[-1], w[1]):
        raise ctx.error(f"the last dim of 'x' ({x[-1]}) does not match weight's D_in ({w[1]})")
    if ctx.has("bias"):
        b = ctx.shape("bias")
        if len(b) != 1 or _mismatch(b[0], w[0]):
            raise ctx.error(f"input 'bias' must have shape [{w[0]}], got {b}")
    return TensorType(ctx.dtype("x"), x[:-1] + (w[0],))


_LINEAR_IN = [In("x", "T"), In("weight", "T", const=True), In("bias", "T", const=True, optional=True)]
_LINEAR_IN_17 = [In("x", "T"), In("weight", "U", const=True), In("bias", "U", const=True, optional=True)]


@mil_op("linear", inputs=_LINEAR_IN_17, domains={"T": _T, "U": _T}, infer=_infer_linear,
        since=Target.iOS17)
@mil_op("linear", inputs=_LINEAR_IN, domains={"T": _T}, infer=_infer_linear)
def linear(x, weight, bias):
    """Fully connected layer: `x @ weight.T + bias` on the last dim of `x`.

    weight: [D_out, D_in]; bias: [D_out], zeros when absent. From iOS17 the weight and bias dtype may
    differ from the activation dtype.
    """
    if bias is None:
        x, weight = _promote(x, weight)
        return torch.nn.functional.linear(x, weight)
    x, weight, bias = _promote(x, weight, bias)
    return torch.nn.functional.linear(x, weight, bias)


# ---------------------------------------------------------------------------------------------- matmul

def _matmul_shape(ctx):
    x, y = list(ctx.shape("x")), list(ctx.shape("y"))
    if not x or not y:
        raise ctx.error(f"inputs 'x' and 'y' must have rank >= 1, got shapes {tuple(x)} and {tuple(y)}")
    tx, ty = ctx.param("transpose_x"), ctx.param("transpose_y")
    if tx and len(x) == 1:
        raise ctx.error("input 'x' is rank 1, so 'transpose_x' must be False")
    if tx:
        x[-1], x[-2] = x[-2], x[-1]
    if ty and len(y) >= 2:
        y[-1], y[-2] = y[-2], y[-1]
    x_vec, y_vec = len(x) == 1, len(y) == 1
    if x_vec:
        x = [1] + x
    if y_vec:
        y = y + [1]
    if _mismatch(x[-1], y[-2]):
        raise ctx.error(f"inner dims do not match: 'x' {ctx.shape('x')} and 'y' {ctx.shape('y')} "
                        f"(transpose_x={bool(tx)}, transpose_y={bool(ty)})")
    out = list(_broadcast(ctx, tuple(x[:-2]), tuple(y[:-2]))) + [x[-2], y[-1]]
    if y_vec:
        out.pop(-1)
    if x_vec:
        out.pop(-2 if not y_vec else -1)
    return tuple(out)


def _infer_matmul(ctx):
    return TensorType(ctx.dtype("x"), _matmul_shape(ctx))


def _infer_matmul_17(ctx):
    x, y = ctx.var("x"), ctx.var("y")
    if x.is_const == y.is_const and x.dtype is not y.dtype:
        kind = "const" if x.is_const else "non-const"
        raise ctx.error(f"inputs 'x' and 'y' are both {kind}, so they must share one dtype; "
                        f"got {x.dtype} and {y.dtype}")
    # With exactly one const operand, the output follows the runtime operand.
    out_dtype = y.dtype if x.is_const and not y.is_const else x.dtype
    return TensorType(out_dtype, _matmul_shape(ctx))


def _matmul_inputs(y_types):
    return [In("x", "T"), In("y", y_types),
            In("transpose_x", (dt.bool_,), const=True, optional=True, param=True, default=False),
            In("transpose_y", (dt.bool_,), const=True, optional=True, param=True, default=False)]


@mil_op("matmul", inputs=_matmul_inputs("U"), domains={"T": _T, "U": _T}, infer=_infer_matmul_17,
        since=Target.iOS17)
@mil_op("matmul", inputs=_matmul_inputs("T"), domains={"T": _T}, infer=_infer_matmul)
def matmul(x, y, transpose_x, transpose_y):
    """Batched matrix product with numpy semantics: batch dims broadcast, a rank-1 operand is treated
    as a row (x) or column (y) vector and that dim is dropped from the result.

    transpose_x / transpose_y: swap the last two dims of that operand first (no effect on rank 1 y).
    """
    transpose_x, transpose_y = _scalar(transpose_x), _scalar(transpose_y)
    if transpose_x and x.dim() >= 2:
        x = x.transpose(-1, -2)
    if transpose_y and y.dim() >= 2:
        y = y.transpose(-1, -2)
    x, y = _promote(x, y)
    return torch.matmul(x, y)


# ---------------------------------------------------------------------------------------------- einsum

def _einsum_pattern(equation: str):
    """Number each letter by first appearance: 'nchw,nwhu->nchu' -> ([0,1,2,3], [0,3,2,4], [0,1,2,4])."""
    ids: dict[str, int] = {}
    terms = equation.replace(" ", "").replace("->", ",").split(",")
    return [[ids.setdefault(c, len(ids)) for c in term] for term in terms]


# The only contractions Core ML implements: a matmul over dims -1 (of x) and -3 (of y).
_EINSUM_RANK = {4: [[0, 1, 2, 3], [0, 3, 2, 4], [0, 1, 2, 4]],
                3: [[0, 1, 2], [2, 1, 3], [0, 1, 3]]}


def _infer_einsum(ctx):
    values = ctx.types("values")
    if len(values) != 2:
        raise ctx.error(f"input 'values' must hold exactly 2 tensors, got {len(values)}")
    x, y = values[0].shape, values[1].shape
    if len(x) != len(y) or len(x) not in _EINSUM_RANK:
        raise ctx.error(f"input 'values' must be two tensors of rank 3 or 4, got shapes {x} and {y}")
    equation = ctx.param("equation")
    if "->" not in equation or _einsum_pattern(equation) != _EINSUM_RANK[len(x)]:
        supported = "'nchw,nwhu->nchu'" if len(x) == 4 else "'chw,whr->chr'"
        raise ctx.error(f"input 'equation' {equation!r} is not supported for rank {len(x)}; "
                        f"only {supported} or a renaming of it")
    if _mismatch(x[-1], y[-3]):
        raise ctx.error(f"contracted dims differ: {x[-1]} (dim -1 of x) vs {y[-3]} (dim -3 of y)")
    out = [0] * len(x)
    out[-1], out[-3] = y[-1], x[-3]
    (out[-2],) = _broadcast(ctx, (x[-2],), (y[-2],))
    if len(x) == 4:
        (out[0],) = _broadcast(ctx, (x[0],), (y[0],))
    return TensorType(values[0].dtype, tuple(out))


@mil_op("einsum", domains={"T": dt.FLOATS}, infer=_infer_einsum,
        inputs=[In("values", "T", variadic=True), In("equation", (dt.string,), const=True)])
def einsum(values, equation):
    """Einstein summation, limited to the forms `nchw,nwhu->nchu` and `chw,whr->chr` (any letters):
    a matrix product of x's last dim with y's third-from-last dim, the other dims being batch dims
    where a size of 1 broadcasts."""
    x, y = _promote(*values)
    # Move H next to the batch so the contraction is a plain broadcasting matmul, then move it back.
    out = torch.matmul(x.transpose(-2, -3), y.transpose(-2, -3))
    return out.transpose(-2, -3)
