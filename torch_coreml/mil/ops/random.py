"""Random sampling ops: random_bernoulli, random_categorical, random_normal, random_uniform.

Every op takes an optional const `seed` (default -1). A seed >= 0 makes the kernel deterministic: it
draws from a `torch.Generator` seeded with it, so the same op gives the same values on every run;
-1 draws from a freshly, randomly seeded generator. Samples are drawn in fp32 and the runtime casts
them to the inferred dtype. (Constant folding must leave these ops alone: their values are not
compile-time facts.)
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..types import TensorType
from .infer import shape_from_value
from .spec import In, mil_op

FLOATS = (dt.fp16, dt.fp32)
_SEED = In("seed", (dt.int32,), const=True, optional=True, default=-1, param=True)


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    if seed >= 0:
        g.manual_seed(int(seed))
    else:
        g.seed()
    return g


def _out_shape(shape: torch.Tensor) -> list[int]:
    dims = [int(d) for d in shape.reshape(-1).tolist()]
    if any(d < 0 for d in dims):
        raise ValueError(f"random op: negative size in shape {dims}")
    return dims


def _infer_from_shape(*dtype_inputs: str):
    """Output shape from the `shape` input; dtype from the first present input of `dtype_inputs`
    (their defaults are fp32 values)."""

    def infer(ctx):
        if ctx.rank("shape") != 1:
            raise ctx.error(f"input 'shape' must be a vector, got {ctx.type('shape')}")
        dtype = next((ctx.dtype(n) for n in dtype_inputs if ctx.has(n)), dt.fp32)
        return TensorType(dtype, shape_from_value(ctx, "shape"))

    return infer


@mil_op("random_bernoulli", domains={"T": FLOATS}, infer=_infer_from_shape("prob"), inputs=[
    In("shape", (dt.int32,)),
    In("prob", "T", const=True, optional=True, default=0.5, param=True), _SEED])
def random_bernoulli(shape, prob, seed):
    """A tensor of the runtime `shape` holding 1 with probability `prob`, else 0."""
    g = _generator(seed)
    return torch.bernoulli(torch.full(_out_shape(shape), float(prob)), generator=g)


def _infer_categorical(ctx):
    if ctx.param("mode") not in ("logits", "probs"):
        raise ctx.error(f"input 'mode' must be 'logits' or 'probs', got {ctx.param('mode')!r}")
    size = int(ctx.param("size"))
    if size < 1:
        raise ctx.error(f"input 'size' must be positive, got {size}")
    if ctx.rank("x") < 1:
        raise ctx.error(f"input 'x' must have rank >= 1, got {ctx.type('x')}")
    return TensorType(ctx.dtype("x"), ctx.shape("x")[:-1] + (size,))


@mil_op("random_categorical", domains={"T": FLOATS}, infer=_infer_categorical, inputs=[
    In("x", "T"),
    In("mode", (dt.string,), const=True, optional=True, default="logits", param=True),
    In("size", (dt.int32,), const=True, optional=True, default=1, param=True), _SEED])
def random_categorical(x, mode, size, seed):
    """Draws `size` class indices (with replacement) from each distribution along the last axis of
    `x`, which holds `logits` (log-probabilities) or `probs` (probabilities) per `mode`. The indices
    are returned in x's dtype, shape x.shape[:-1] + [size]."""
    flat = x.to(torch.float32).reshape(-1, x.shape[-1])
    probs = torch.softmax(flat, dim=-1) if mode == "logits" else flat
    picks = torch.multinomial(probs, int(size), replacement=True, generator=_generator(seed))
    return picks.to(torch.float32).reshape(*x.shape[:-1], int(size))


@mil_op("random_normal", domains={"T": FLOATS}, infer=_infer_from_shape("mean", "stddev"), inputs=[
    In("shape", (dt.int32,)),
    In("mean", "T", const=True, optional=True, default=0.0, param=True),
    In("stddev", "T", const=True, optional=True, default=1.0, param=True), _SEED])
def random_normal(shape, mean, stddev, seed):
    """A tensor of the runtime `shape` drawn from the normal distribution N(mean, stddev^2)."""
    out = torch.randn(_out_shape(shape), generator=_generator(seed))
    return out * float(stddev) + float(mean)


@mil_op("random_uniform", domains={"T": FLOATS}, infer=_infer_from_shape("low", "high"), inputs=[
    In("shape", (dt.int32,)),
    In("low", "T", const=True, optional=True, default=0.0, param=True),
    In("high", "T", const=True, optional=True, default=1.0, param=True), _SEED])
def random_uniform(shape, low, high, seed, out_types):
    """A tensor of the runtime `shape` drawn uniformly from [low, high) (all `low` when equal)."""
    out = torch.rand(_out_shape(shape), generator=_generator(seed), dtype=torch.float64)
    out = (out * (float(high) - float(low)) + float(low)).to(out_types[0].dtype.torch)
    if high > low:  # rounding to the output dtype must not reach `high`
        hi = torch.tensor(float(high), dtype=out.dtype)
        out = torch.minimum(out, torch.nextafter(hi, torch.tensor(float(low), dtype=out.dtype)))
    return out
