"""MIL tensor-transformation ops, part 1: reshaping, reordering and re-blocking a tensor's elements.

Slicing (`slice_by_index`, `slice_by_size`, `slice_update`) lives in `tensor_transformation_slice.py`;
flatten2d sits with the tensor_operation ops, as in the MIL definitions. When a newer opset only widens
an op's type domains, the versions share one kernel: the `mil_op` decorators are stacked on it, newest
on top.

The small dimension-arithmetic helpers at the top are shared by the other tensor families
(`tensor_operation`, `scatter_gather`): a symbolic dim stays the same `Symbol` only when the result
is provably that dim; anything else symbolic becomes a fresh `Symbol`.
"""

from __future__ import annotations

from collections import Counter

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import Dim, Symbol, TensorType
from .infer import fresh_dims
from .spec import In, mil_op

# Type domains, spelled as in the MIL op definitions.
I32 = (dt.int32,)
BOOL = (dt.bool_,)
STR = (dt.string,)
T15 = (dt.fp16, dt.fp32, dt.int32, dt.bool_)
T17 = (dt.fp16, dt.fp32, dt.int8, dt.uint8, dt.int16, dt.uint16, dt.int32, dt.bool_)
IDX17 = (dt.int8, dt.int16, dt.int32)  # shape/index tensors widened in iOS17


# -- shared helpers ---------------------------------------------------------------------------------

def dim_mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 0 or b == 0:
        return 0
    if a == 1:
        return b
    if b == 1:
        return a
    return Symbol.fresh()


def dim_prod(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


def dim_div(ctx, a: Dim, b: int, what: str) -> Dim:
    """`a / b` where the division must be exact."""
    if b == 1:
        return a
    if isinstance(a, int):
        if b <= 0 or a % b:
            raise ctx.error(f"{what} ({a}) is not divisible by {b}")
        return a // b
    return Symbol.fresh()


def dim_add(a: Dim, n: int) -> Dim:
    if isinstance(a, int):
        return a + n
    return a if n == 0 else Symbol.fresh()


def as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def int_param(ctx, name: str) -> int:
    """A const input that must be one integer (a scalar)."""
    v = ctx.param(name)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ctx.error(f"input {name!r} must be an integer scalar, got {v!r}")
    return v


def axis_of(ctx, name: str, axis: int, rank: int) -> int:
    """Normalize `axis` into [0, rank); the error names the input it came from."""
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"input {name!r}: axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def axes_of(ctx, name: str, axes, rank: int) -> list[int]:
    out = [axis_of(ctx, name, int(a), rank) for a in as_list(axes)]
    if len(set(out)) != len(out):
        raise ctx.error(f"input {name!r} repeats an axis: {as_list(axes)}")
    return out


def vector_len(ctx, name: str) -> int:
    """The static length of a 1-D input (shape/begin/reps...)."""
    shape = ctx.shape(name)
    if len(shape) != 1 or not isinstance(shape[0], int):
        raise ctx.error(f"input {name!r} must be a 1-D tensor of known length, got {ctx.type(name)}")
    return shape[0]


def int_values(ctx, name: str) -> list[int] | None:
    """A 1-D integer input's compile-time values, or None when only known at run time."""
    v = ctx.value(name)
    return None if v is None else [int(x) for x in v.reshape(-1)]


def rank4(ctx) -> tuple:
    if ctx.rank("x") != 4:
        raise ctx.error(f"input 'x' must have rank 4, got {ctx.type('x')}")
    return ctx.shape("x")


# -- depth/space re-blocking -----------------------------------------------------------------------

def _positive(ctx, name: str) -> int:
    v = int_param(ctx, name)
    if v < 1:
        raise ctx.error(f"input {name!r} must be positive, got {v}")
    return v


def _depth_to_space_type(ctx, name: str = "block_size"):
    n, c, h, w = rank4(ctx)
    b = _positive(ctx, name)
    c = dim_div(ctx, c, b * b, "the channel dim of input 'x'")
    return TensorType(ctx.dtype("x"), (n, c, dim_mul(h, b), dim_mul(w, b)))


def _space_to_depth_type(ctx, name: str = "block_size"):
    n, c, h, w = rank4(ctx)
    b = _positive(ctx, name)
    return TensorType(ctx.dtype("x"), (n, dim_mul(c, b * b), dim_div(ctx, h, b, "the height of input 'x'"),
                                       dim_div(ctx, w, b, "the width of input 'x'")))


@mil_op("depth_to_space", domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("block_size", I32, const=True, param=True)],
        infer=_depth_to_space_type)
def depth_to_space(x, block_size):
    """Move channel blocks into space, channel-block-major ("DCR"):
    out[n, c, h*b + i, w*b + j] = x[n, (i*b + j) * C/b² + c, h, w] with b = block_size."""
    n, c, h, w = x.shape
    b = block_size
    y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


@mil_op("space_to_depth", domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("block_size", I32, const=True, param=True)],
        infer=_space_to_depth_type)
def space_to_depth(x, block_size):
    """Inverse of depth_to_space: each b×b spatial block becomes b² channel blocks,
    out[n, (i*b + j) * C + c, h, w] = x[n, c, h*b + i, w*b + j]."""
    n, c, h, w = x.shape
    b = block_size
    y = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@mil_op("pixel_shuffle", domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("upscale_factor", I32, const=True, param=True)],
        infer=lambda ctx: _depth_to_space_type(ctx, "upscale_factor"))
def pixel_shuffle(x, upscale_factor):
    """torch.nn.PixelShuffle: channel-major ("CRD") depth to space,
    out[n, c, h*f + i, w*f + j] = x[n, c*f² + i*f + j, h, w]."""
    return torch.nn.functional.pixel_shuffle(x, upscale_factor)


@mil_op("pixel_unshuffle", since=Target.iOS16, domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("downscale_factor", (dt.uint32,), const=True, param=True)],
        infer=lambda ctx: _space_to_depth_type(ctx, "downscale_factor"))
def pixel_unshuffle(x, downscale_factor):
    """torch.nn.PixelUnshuffle, the inverse of pixel_shuffle."""
    return torch.nn.functional.pixel_unshuffle(x, downscale_factor)


def _block_shape(ctx, second: str):
    rank4(ctx)
    block = int_values(ctx, "block_shape")
    pads = ctx.value(second)
    if len(block) != 2 or pads.shape != (2, 2):
        raise ctx.error(f"inputs 'block_shape' and {second!r} must have shapes [2] and [2, 2], "
                        f"got {list(ctx.shape('block_shape'))} and {list(pads.shape)}")
    if min(block) < 1:
        raise ctx.error(f"input 'block_shape' must be positive, got {block}")
    return block, [[int(v) for v in row] for row in pads]


def _space_to_batch_type(ctx):
    (b0, b1), pads = _block_shape(ctx, "paddings")
    n, c, h, w = ctx.shape("x")
    h = dim_div(ctx, dim_add(h, sum(pads[0])), b0, "padded height")
    w = dim_div(ctx, dim_add(w, sum(pads[1])), b1, "padded width")
    return TensorType(ctx.dtype("x"), (dim_mul(n, b0 * b1), c, h, w))


def _batch_to_space_type(ctx):
    (b0, b1), crops = _block_shape(ctx, "crops")
    n, c, h, w = ctx.shape("x")
    n = dim_div(ctx, n, b0 * b1, "the batch dim of input 'x'")
    h = dim_add(dim_mul(h, b0), -sum(crops[0]))
    w = dim_add(dim_mul(w, b1), -sum(crops[1]))
    if any(isinstance(d, int) and d < 0 for d in (h, w)):
        raise ctx.error(f"input 'crops' {crops} removes more than the whole spatial extent")
    return TensorType(ctx.dtype("x"), (n, c, h, w))


@mil_op("space_to_batch", domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("block_shape", I32, const=True, param=True),
                In("paddings", I32, const=True, param=True)],
        infer=_space_to_batch_type)
def space_to_batch(x, block_shape, paddings):
    """Zero-pad H and W by `paddings` ([[top, bottom], [left, right]]), then move each
    block_shape[0]×block_shape[1] spatial phase into the batch:
    out[(i*b1 + j)*N + n, c, h, w] = padded[n, c, h*b0 + i, w*b1 + j]."""
    (b0, b1), ((t, bo), (le, r)) = block_shape, paddings
    x = torch.nn.functional.pad(x, (le, r, t, bo))
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b0, b0, w // b1, b1).permute(3, 5, 0, 1, 2, 4)
    return y.reshape(b0 * b1 * n, c, h // b0, w // b1)


@mil_op("batch_to_space", domains={"T": dt.FLOATS},
        inputs=[In("x", "T"), In("block_shape", I32, const=True, param=True),
                In("crops", I32, const=True, param=True)],
        infer=_batch_to_space_type)
def batch_to_space(x, block_shape, crops):
    """Inverse of space_to_batch: interleave batch phases back into H and W, then crop
    `crops` ([[top, bottom], [left, right]]) off the spatial edges."""
    (b0, b1), ((t, bo), (le, r)) = block_shape, crops
    nb, c, h, w = x.shape
    n = nb // (b0 * b1)
    y = x.reshape(b0, b1, n, c, h, w).permute(2, 3, 4, 0, 5, 1).reshape(n, c, h * b0, w * b1)
    return y[:, :, t:h * b0 - bo, le:w * b1 - r]


# -- rank changes --------------------------------------------------------------------------------

def _expand_dims_type(ctx):
    shape = list(ctx.shape("x"))
    axes = as_list(ctx.param("axes"))
    for a in sorted(axes_of(ctx, "axes", axes, len(shape) + len(axes))):
        shape.insert(a, 1)
    return TensorType(ctx.dtype("x"), tuple(shape))


_EXPAND_DIMS = [In("x", "T"), In("axes", I32, const=True, param=True)]


@mil_op("expand_dims", since=Target.iOS17, domains={"T": T17}, inputs=_EXPAND_DIMS, infer=_expand_dims_type)
@mil_op("expand_dims", domains={"T": T15}, inputs=_EXPAND_DIMS, infer=_expand_dims_type)
def expand_dims(x, axes):
    """Insert a size-1 dim at each of `axes` (positions in the output; negative counts from its end)."""
    axes = as_list(axes)
    out_rank = x.dim() + len(axes)
    for a in sorted(a % out_rank for a in axes):
        x = x.unsqueeze(a)
    return x


def _squeeze_type(ctx):
    shape = ctx.shape("x")
    axes = ctx.param("axes")
    chosen = set(range(len(shape))) if axes is None else set(axes_of(ctx, "axes", axes, len(shape)))
    # A symbolic dim is assumed not to be 1, so it is kept.
    return TensorType(ctx.dtype("x"), tuple(d for i, d in enumerate(shape) if not (i in chosen and d == 1)))


_SQUEEZE = [In("x", "T"), In("axes", I32, const=True, optional=True, param=True)]


@mil_op("squeeze", since=Target.iOS17, domains={"T": T17}, inputs=_SQUEEZE, infer=_squeeze_type)
@mil_op("squeeze", domains={"T": T15}, inputs=_SQUEEZE, infer=_squeeze_type)
def squeeze(x, axes):
    """Drop size-1 dims: all of them, or those among `axes` (listed dims that are not 1 are kept,
    as in PyTorch)."""
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(a % x.dim() for a in as_list(axes))) if x.dim() else x


# -- reshape -------------------------------------------------------------------------------------

def resolve_zeros(src: tuple, target: list[int], right_aligned: bool) -> list:
    """Replace 0 entries of a reshape target by dims of `src`.

    iOS15/16: target[i] == 0 takes src[i], and then len(target) must equal the rank of src.
    iOS17: zeros are matched from the right (target[-k] takes src[-k]); a 0 with no partner is 1."""
    if 0 not in target:
        return list(target)
    if not right_aligned:
        if len(target) != len(src):
            raise ValueError(f"a 0 in the target shape {target} needs len(shape) == rank(x) ({len(src)})")
        return [src[i] if v == 0 else v for i, v in enumerate(target)]
    out = list(target)
    for k in range(1, len(out) + 1):
        if out[-k] == 0:
            out[-k] = src[-k] if k <= len(src) else 1
    return out


def _split(dims) -> tuple[Counter, int]:
    """(multiset of the symbolic dims, product of the static dims)."""
    return Counter(d for d in dims if isinstance(d, Symbol)), dim_prod([d for d in dims if isinstance(d, int)])


def _quotient(ctx, num, den) -> Dim:
    """The dim d with prod(den) * d == prod(num), when it can be told at compile time."""
    (nsym, nval), (dsym, dval) = _split(num), _split(den)
    if dval == 0:
        raise ctx.error(f"cannot infer the -1 entry of shape: the other entries have volume 0 ({list(den)})")
    if dsym - nsym:
        return Symbol.fresh()
    left = nsym - dsym
    if not left:
        if nval % dval:
            raise ctx.error(f"cannot reshape {list(num)} elements into a shape with a multiple of {dval}")
        return nval // dval
    if nval == dval and sum(left.values()) == 1:
        return next(iter(left))
    return Symbol.fresh()


def _reshape_type(right_aligned: bool):
    def infer(ctx):
        n = vector_len(ctx, "shape")
        dtype = ctx.dtype("x")
        target = int_values(ctx, "shape")
        if target is None:
            return TensorType(dtype, fresh_dims(n))
        if target.count(-1) > 1 or min(target, default=0) < -1:
            raise ctx.error(f"input 'shape' {target} may hold at most one -1 and no other negative value")
        src = ctx.shape("x")
        try:
            dims = resolve_zeros(src, target, right_aligned)
        except ValueError as e:
            raise ctx.error(f"input 'shape': {e}") from None
        if -1 in dims:
            k = dims.index(-1)
            dims[k] = _quotient(ctx, src, dims[:k] + dims[k + 1:])
        elif _split(src)[0] == _split(dims)[0] and _split(src)[1] != _split(dims)[1]:
            raise ctx.error(f"cannot reshape x of shape {list(src)} into {target}")
        return TensorType(dtype, tuple(dims))

    return infer


@mil_op("reshape", domains={"T": T15}, inputs=[In("x", "T"), In("shape", I32)], infer=_reshape_type(False))
def reshape(x, shape):
    """Same elements in a new shape. `shape` may hold one -1 (inferred from the volume) and 0s,
    which copy the dim of x at the same position (then len(shape) must equal rank(x))."""
    return x.reshape(resolve_zeros(tuple(x.shape), [int(v) for v in shape.reshape(-1).tolist()], False))


@mil_op("reshape", since=Target.iOS17, domains={"T": T17, "U": IDX17},
        inputs=[In("x", "T"), In("shape", "U")], infer=_reshape_type(True))
def reshape_ios17(x, shape):
    """Same elements in a new shape. `shape` may hold one -1 (inferred from the volume) and 0s, matched
    to the dims of x from the right; a 0 left of all of x's dims means 1."""
    return x.reshape(resolve_zeros(tuple(x.shape), [int(v) for v in shape.reshape(-1).tolist()], True))


# -- reordering ----------------------------------------------------------------------------------

def _reverse_type(ctx):
    axes = ctx.param("axes")
    if axes is not None:
        axes_of(ctx, "axes", axes, ctx.rank("x"))
    return ctx.type("x")


_REVERSE = [In("x", "T"), In("axes", I32, const=True, optional=True, param=True)]


@mil_op("reverse", since=Target.iOS17, domains={"T": T17}, inputs=_REVERSE, infer=_reverse_type)
@mil_op("reverse", domains={"T": T15}, inputs=_REVERSE, infer=_reverse_type)
def reverse(x, axes):
    """Flip x along `axes` (default: every dim)."""
    dims = range(x.dim()) if axes is None else [a % x.dim() for a in as_list(axes)]
    return torch.flip(x, list(dims))


def _reverse_sequence_type(ctx):
    rank = ctx.rank("x")
    seq = axis_of(ctx, "seq_axis", int_param(ctx, "seq_axis"), rank)
    batch = axis_of(ctx, "batch_axis", int_param(ctx, "batch_axis"), rank)
    if seq == batch:
        raise ctx.error(f"inputs 'seq_axis' and 'batch_axis' must name different dims, both are {seq}")
    if ctx.rank("lengths") != 1:
        raise ctx.error(f"input 'lengths' must be 1-D, got {ctx.type('lengths')}")
    (n,), b = ctx.shape("lengths"), ctx.shape("x")[batch]
    if isinstance(b, int) and isinstance(n, int) and n != b:
        raise ctx.error(f"input 'lengths' has {n} entries but x has {b} rows on batch_axis {batch}")
    return ctx.type("x")


def _reverse_sequence_inputs(lengths_types):
    return [In("x", "T"), In("lengths", lengths_types),
            In("seq_axis", I32, const=True, optional=True, param=True, default=0),
            In("batch_axis", I32, const=True, optional=True, param=True, default=0)]


@mil_op("reverse_sequence", since=Target.iOS17, domains={"T": T17, "U": IDX17},
        inputs=_reverse_sequence_inputs("U"), infer=_reverse_sequence_type)
@mil_op("reverse_sequence", domains={"T": T15}, inputs=_reverse_sequence_inputs(I32),
        infer=_reverse_sequence_type)
def reverse_sequence(x, lengths, seq_axis, batch_axis):
    """For each index b along batch_axis, reverse the first lengths[b] elements along seq_axis and
    keep the rest in place."""
    seq, batch = seq_axis % x.dim(), batch_axis % x.dim()
    y = x.movedim((batch, seq), (0, 1))
    nb, ns = y.shape[:2]
    t = torch.arange(ns).unsqueeze(0)
    n = lengths.reshape(-1, 1).long()
    idx = torch.where(t < n, n - 1 - t, t).reshape(nb, ns, *([1] * (y.dim() - 2))).expand(y.shape)
    return torch.gather(y, 1, idx).movedim((0, 1), (batch, seq))


def _transpose_type(ctx):
    shape = ctx.shape("x")
    perm = as_list(ctx.param("perm"))
    if len(perm) != len(shape):
        raise ctx.error(f"input 'perm' {perm} must have rank(x) = {len(shape)} entries")
    perm = axes_of(ctx, "perm", perm, len(shape)) if shape else []
    return TensorType(ctx.dtype("x"), tuple(shape[p] for p in perm))


_TRANSPOSE = [In("x", "T"), In("perm", I32, const=True, param=True)]


@mil_op("transpose", since=Target.iOS17, domains={"T": T17}, inputs=_TRANSPOSE, infer=_transpose_type)
@mil_op("transpose", domains={"T": T15}, inputs=_TRANSPOSE, infer=_transpose_type)
def transpose(x, perm):
    """Permute dims: output dim i is input dim perm[i]."""
    perm = as_list(perm)
    return x.permute([p % x.dim() for p in perm]) if perm else x


def _sliding_windows_type(ctx):
    shape = list(ctx.shape("x"))
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(shape))
    size, stride = _positive(ctx, "size"), _positive(ctx, "stride")
    d = shape[axis]
    if isinstance(d, int):
        if size > d:
            raise ctx.error(f"input 'size' {size} is larger than dim {axis} of x ({d})")
        shape[axis] = (d - size) // stride + 1
    else:
        shape[axis] = Symbol.fresh()
    shape.insert(axis + 1, size)
    return TensorType(ctx.dtype("x"), tuple(shape))


_SLIDING = [In("x", "T"), In("axis", I32, const=True, param=True), In("size", I32, const=True, param=True),
            In("stride", I32, const=True, optional=True, param=True, default=1)]


@mil_op("sliding_windows", since=Target.iOS17, domains={"T": T17}, inputs=_SLIDING, infer=_sliding_windows_type)
@mil_op("sliding_windows", domains={"T": (dt.fp16, dt.fp32, dt.int32)}, inputs=_SLIDING,
        infer=_sliding_windows_type)
def sliding_windows(x, axis, size, stride):
    """All windows of `size` consecutive elements along `axis`, `stride` apart. Dim `axis` becomes
    the window count (d - size) // stride + 1 and a new dim of length `size` follows it."""
    axis %= x.dim()
    return x.unfold(axis, size, stride).movedim(-1, axis + 1)


def _reshape_like_type(ctx):
    refs = ctx.types("ref_tensors")
    parts = {name: ctx.types(name) for name in ("begins", "ends", "end_masks")}
    for name, types in parts.items():
        if len(types) != len(refs):
            raise ctx.error(f"input {name!r} has {len(types)} entries, ref_tensors has {len(refs)}")
        if any(t.shape for t in types):
            raise ctx.error(f"input {name!r} must be a list of scalars")
    shape: list = []
    for ref, b, e, m in zip(refs, *(ctx.param(n) for n in parts)):
        shape += ref.shape[int(b):] if m else ref.shape[int(b):int(e)]
    src = ctx.shape("x")
    if all(isinstance(d, int) for d in src + tuple(shape)) and dim_prod(src) != dim_prod(shape):
        raise ctx.error(f"x of shape {list(src)} cannot be reshaped to {shape}")
    return TensorType(ctx.dtype("x"), tuple(shape))


def _reshape_like_inputs(ref_types):
    return [In("x", "T"), In("ref_tensors", ref_types, variadic=True),
            In("begins", I32, const=True, variadic=True, param=True),
            In("ends", I32, const=True, variadic=True, param=True),
            In("end_masks", BOOL, const=True, variadic=True, param=True)]


@mil_op("reshape_like", since=Target.iOS17, domains={"T": T17}, inputs=_reshape_like_inputs(T17),
        infer=_reshape_like_type)
@mil_op("reshape_like", since=Target.iOS16, domains={"T": T15}, inputs=_reshape_like_inputs(T15),
        infer=_reshape_like_type)
def reshape_like(x, ref_tensors, begins, ends, end_masks):
    """Reshape x to a shape assembled from the reference tensors' run-time shapes: the concatenation
    of ref_tensors[i].shape[begins[i]:ends[i]] (or [begins[i]:] where end_masks[i] is true)."""
    shape: list[int] = []
    for ref, b, e, m in zip(ref_tensors, begins, ends, end_masks):
        shape += ref.shape[b:] if m else ref.shape[b:e]
    return x.reshape(shape)
