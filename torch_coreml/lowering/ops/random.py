"""Random sampling: rand/randn/randint and their _like forms, bernoulli, normal, the distributions of
the in-place random ops (uniform_, normal_, exponential_, cauchy_, log_normal_, geometric_),
multinomial, dropout, rrelu's random slopes and fractional max pooling's random regions.

MIL draws from four distributions (random_uniform, random_normal, random_bernoulli,
random_categorical), whose parameters must be compile-time constants. Every other distribution is a
transform of a uniform or normal draw (inverse CDF, Gumbel keys), and a probability known only at run
time is a comparison of a uniform draw with it. Every draw uses seed -1, a fresh stream on each
prediction, like torch's global generator advancing between calls: a fixed seed would return the
same "random" numbers on every call. Torch's generator state cannot be reproduced, so values differ
from eager; the distributions are the same.

Draws that feed a nonlinear transform (log, tan, floor) are made in fp32 even in an fp16 program:
fp16 resolves 2^-11 near 1, which would cut exponential tails off at about 7.6 and make integer
draws above 2048 uneven.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ...mil.targets import Target
from ..registry import lowering
from ._nn_helpers import output_used
from .creation import filled, keep_static_dims
from .elementwise import binary, to_float
from .shape import int_vector, select_axis
from .unary import natural_log

aten = torch.ops.aten

_SEED = -1  # a fresh random stream on every prediction
_EXACT_INT = 2 ** 24  # integers up to this size are exact in fp32, and so equally likely as draws


# -- shapes and dtypes -----------------------------------------------------------------------------

def _size(ctx, size) -> Var:
    """An ATen `SymInt[] size` as a MIL shape (a const when static)."""
    if any(not isinstance(s, Var) and s == 0 for s in size):
        raise ctx.unsupported(f"a zero-sized tensor {list(size)}; Core ML has no empty tensors")
    return int_vector(ctx, list(size))


def _shaped(ctx, out: Var, dims) -> Var:
    """Restore the static dims a run-time shape hid from type inference."""
    return keep_static_dims(ctx, out, [d if isinstance(d, int) else None for d in dims])


def _broadcast_shape(ctx, *tensors: Var) -> tuple[Var, tuple]:
    """The broadcast shape of the tensors, as a MIL shape and as dims (None where unknown)."""
    shapes = [t.shape for t in tensors]
    if all(isinstance(d, int) for s in shapes for d in s):
        dims = tuple(torch.broadcast_shapes(*shapes))
        return ctx.const(np.asarray(dims, np.int32), dt.int32), dims
    total = tensors[0]
    for t in tensors[1:]:  # only the shape of the sum is read, never its values
        total = binary(ctx, "add", total, t, ctx.float_dtype)
    return ctx.b.op("shape", x=total), total.shape


def _float_out(ctx, dtype, like: Var | None = None) -> dt.DType:
    """The float dtype the node returns: FX metadata, else the `dtype` argument, else `like`'s."""
    out = ctx.out_dtype()
    if out is None:
        out = ctx.mil_dtype(dtype) if dtype is not None else like.dtype if like is not None else ctx.float_dtype
    if not out.is_float:
        raise ctx.unsupported("this random op on an integer dtype (torch supports floating types only)")
    return out


def _float_self(ctx, self: Var, name: str) -> dt.DType:
    if not self.dtype.is_float:
        raise ctx.unsupported(f"{name} on an integer tensor (torch supports floating types only)")
    return _float_out(ctx, None, self)


# -- draws -----------------------------------------------------------------------------------------

def uniform_draw(ctx, shape: Var, low: float = 0.0, high: float = 1.0, dtype: dt.DType = dt.fp32) -> Var:
    """Samples from [low, high) in `dtype`, shaped by the MIL shape `shape`."""
    lo, hi = ctx.promote(float(low), float(high), dtype=dtype)
    return ctx.b.op("random_uniform", shape=shape, low=lo, high=hi, seed=_SEED)


def normal_draw(ctx, shape: Var, mean: float = 0.0, std: float = 1.0, dtype: dt.DType = dt.fp32) -> Var:
    mu, sigma = ctx.promote(float(mean), float(std), dtype=dtype)
    return ctx.b.op("random_normal", shape=shape, mean=mu, stddev=sigma, seed=_SEED)


def _log_of_complement(ctx, u: Var) -> Var:
    """log(1 - u) for u in [0, 1): finite, <= 0."""
    return natural_log(ctx, binary(ctx, "sub", 1.0, u))


def _constant_like(ctx, x: Var, value, dtype: dt.DType) -> Var:
    if all(isinstance(d, int) for d in x.shape):
        return filled(ctx, list(x.shape), value, dtype)
    if ctx.target >= Target.iOS16:
        return ctx.b.op("fill_like", ref_tensor=x, value=ctx.promote(value, dtype=dtype)[0])
    return _shaped(ctx, filled(ctx, ctx.b.op("shape", x=x), value, dtype), x.shape)


# -- rand, randn, randint --------------------------------------------------------------------------

@lowering(aten.rand.default)
def rand(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    """rand(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor"""
    return _shaped(ctx, uniform_draw(ctx, _size(ctx, size), dtype=_float_out(ctx, dtype)), size)


@lowering(aten.randn.default)
def randn(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    """randn(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor"""
    return _shaped(ctx, normal_draw(ctx, _size(ctx, size), dtype=_float_out(ctx, dtype)), size)


@lowering(aten.rand_like.default)
def rand_like(ctx, self, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    """rand_like(Tensor self, *, ScalarType? dtype=None, ..., MemoryFormat? memory_format=None) -> Tensor"""
    out = uniform_draw(ctx, ctx.shape_var(self), dtype=_float_out(ctx, dtype, self))
    return _shaped(ctx, out, self.shape)


@lowering(aten.randn_like.default)
def randn_like(ctx, self, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    """randn_like(Tensor self, *, ScalarType? dtype=None, ..., MemoryFormat? memory_format=None) -> Tensor"""
    out = normal_draw(ctx, ctx.shape_var(self), dtype=_float_out(ctx, dtype, self))
    return _shaped(ctx, out, self.shape)


def _random_integers(ctx, shape: Var, low, high, out: dt.DType) -> Var:
    """Integers uniform in [low, high); the bounds are ints or int32 scalar Vars (run-time bounds are
    not checked: beyond +-2^24 some integers of the range would never be drawn)."""
    if not isinstance(low, Var) and not isinstance(high, Var):
        if low >= high:
            raise ctx.unsupported(f"randint with low {low} >= high {high} (torch refuses it too)")
        if low < -_EXACT_INT or high > _EXACT_INT:
            raise ctx.unsupported(f"randint bounds [{low}, {high}) beyond +-2^24: MIL draws in fp32, "
                                  "which cannot give every integer of that range")
        values = ctx.b.op("floor", x=uniform_draw(ctx, shape, low, high))
    else:
        lo, hi = ctx.promote(low, high, dtype=dt.fp32)
        scaled = ctx.b.op("mul", x=uniform_draw(ctx, shape), y=ctx.b.op("sub", x=hi, y=lo))
        values = ctx.b.op("add", x=ctx.b.op("floor", x=scaled), y=lo)
        high = hi
    # The draw is below `high`, but a device's rounding of low + u * span may reach it.
    values = binary(ctx, "minimum", values, binary(ctx, "sub", high, 1.0, dt.fp32), dt.fp32)
    return ctx.cast(values, out)


def _int_out(ctx, dtype, like: Var | None = None) -> dt.DType:
    out = ctx.out_dtype()
    if out is not None:
        return out
    if dtype is not None:
        return ctx.mil_dtype(dtype)
    return like.dtype if like is not None else dt.int32


@lowering(aten.randint.default, aten.randint.low)
def randint(ctx, size, high, low=0, dtype=None, layout=None, device=None, pin_memory=None):
    """randint.low(SymInt low, SymInt high, SymInt[] size, *, ScalarType? dtype=long, ...) -> Tensor"""
    out = _random_integers(ctx, _size(ctx, size), low, high, _int_out(ctx, dtype))
    return _shaped(ctx, out, size)


@lowering(aten.randint_like.default, aten.randint_like.low_dtype)
def randint_like(ctx, self, high, low=0, dtype=None, layout=None, device=None, pin_memory=None,
                 memory_format=None):
    """randint_like.low_dtype(Tensor self, SymInt low, SymInt high, *, ScalarType? dtype=None, ...) -> Tensor"""
    out = _random_integers(ctx, ctx.shape_var(self), low, high, _int_out(ctx, dtype, self))
    return _shaped(ctx, out, self.shape)


# -- bernoulli and normal --------------------------------------------------------------------------

@lowering(aten.bernoulli.p)
def bernoulli_p(ctx, self, p=0.5, generator=None):
    """bernoulli.p(Tensor self, float p, *, Generator? generator=None) -> Tensor"""
    if not 0.0 <= p <= 1.0:
        raise ctx.unsupported(f"bernoulli with p = {p} outside [0, 1] (torch refuses it too)")
    (prob,) = ctx.promote(float(p), dtype=ctx.float_dtype)
    ones = ctx.b.op("random_bernoulli", shape=ctx.shape_var(self), prob=prob, seed=_SEED)
    return ctx.cast(_shaped(ctx, ones, self.shape), ctx.out_dtype() or self.dtype)


@lowering(aten.bernoulli.Tensor)
def bernoulli_tensor(ctx, self, p, generator=None):
    """bernoulli.Tensor(Tensor self, Tensor p, *, Generator? generator=None) -> Tensor"""
    # random_bernoulli's probability is a constant; a run-time one is P(u < p) = p.
    u = _shaped(ctx, uniform_draw(ctx, ctx.shape_var(self)), self.shape)
    hit = ctx.b.op("less", x=u, y=ctx.cast(p, dt.fp32))
    return ctx.cast(hit, ctx.out_dtype() or self.dtype)


@lowering(aten.normal.Tensor_Tensor, aten.normal.Tensor_float, aten.normal.float_Tensor)
def normal(ctx, mean, std=1.0, generator=None):
    """normal.Tensor_Tensor(Tensor mean, Tensor std, *, Generator? generator=None) -> Tensor"""
    if not isinstance(std, Var) and std < 0:
        raise ctx.unsupported(f"normal with std {std} < 0 (torch refuses it too)")
    out = _float_out(ctx, None)
    tensors = [to_float(ctx, v) for v in (mean, std) if isinstance(v, Var)]
    shape, dims = _broadcast_shape(ctx, *tensors)
    z = _shaped(ctx, normal_draw(ctx, shape, dtype=out), dims)
    return binary(ctx, "add", binary(ctx, "mul", z, std, out), mean, out)


@lowering(aten.normal.float_float)
def normal_float_float(ctx, mean, std, size, generator=None, dtype=None, layout=None, device=None,
                       pin_memory=None):
    """normal.float_float(float mean, float std, SymInt[] size, *, Generator? generator=None, ScalarType? dtype=None, ...) -> Tensor"""
    if std < 0:
        raise ctx.unsupported(f"normal with std {std} < 0 (torch refuses it too)")
    return _shaped(ctx, normal_draw(ctx, _size(ctx, size), mean, std, _float_out(ctx, dtype)), size)


# -- the in-place random ops (functionalized: they return the new values of self) -----------------

@lowering(aten.uniform.default)
def uniform(ctx, self, from_=0.0, to=1.0, generator=None):
    """uniform(Tensor self, float from=0., float to=1., *, Generator? generator=None) -> Tensor"""
    if from_ > to:
        raise ctx.unsupported(f"uniform_ with from {from_} > to {to} (torch refuses it too)")
    out = uniform_draw(ctx, ctx.shape_var(self), from_, to, _float_self(ctx, self, "uniform_"))
    return _shaped(ctx, out, self.shape)


@lowering(aten.normal_functional.default)
def normal_functional(ctx, self, mean=0.0, std=1.0, generator=None):
    """normal_functional(Tensor self, float mean=0., float std=1., *, Generator? generator=None) -> Tensor"""
    if std < 0:
        raise ctx.unsupported(f"normal_ with std {std} < 0 (torch refuses it too)")
    out = normal_draw(ctx, ctx.shape_var(self), mean, std, _float_self(ctx, self, "normal_"))
    return _shaped(ctx, out, self.shape)


def _transformed_uniform(ctx, self: Var, transform, out: dt.DType) -> Var:
    """transform(u) for u uniform in [0, 1), drawn and transformed in fp32, shaped like self."""
    u = _shaped(ctx, uniform_draw(ctx, ctx.shape_var(self)), self.shape)
    return ctx.cast(transform(u), out)


@lowering(aten.exponential.default)
def exponential(ctx, self, lambd=1.0, generator=None):
    """exponential(Tensor self, float lambd=1., *, Generator? generator=None) -> Tensor"""
    if not lambd > 0:
        raise ctx.unsupported(f"exponential_ with lambd {lambd} <= 0 (torch refuses it too)")
    out = _float_self(ctx, self, "exponential_")

    def inverse_cdf(u):  # -log(1 - u) / lambda
        return binary(ctx, "mul", _log_of_complement(ctx, u), -1.0 / lambd)

    return _transformed_uniform(ctx, self, inverse_cdf, out)


@lowering(aten.cauchy.default)
def cauchy(ctx, self, median=0.0, sigma=1.0, generator=None):
    """cauchy(Tensor self, float median=0., float sigma=1., *, Generator? generator=None) -> Tensor"""
    if not sigma > 0:
        raise ctx.unsupported(f"cauchy_ with sigma {sigma} <= 0 (torch refuses it too)")
    out = _float_self(ctx, self, "cauchy_")

    def inverse_cdf(u):  # median + sigma * tan(pi * (u - 1/2))
        angle = binary(ctx, "mul", binary(ctx, "sub", u, 0.5), math.pi)
        return binary(ctx, "add", binary(ctx, "mul", ctx.b.op("tan", x=angle), sigma), median)

    return _transformed_uniform(ctx, self, inverse_cdf, out)


@lowering(aten.log_normal.default)
def log_normal(ctx, self, mean=1.0, std=2.0, generator=None):
    """log_normal(Tensor self, float mean=1., float std=2., *, Generator? generator=None) -> Tensor"""
    if not std > 0:
        raise ctx.unsupported(f"log_normal_ with std {std} <= 0 (torch refuses it too)")
    out = _float_self(ctx, self, "log_normal_")
    z = _shaped(ctx, normal_draw(ctx, ctx.shape_var(self), mean, std), self.shape)
    return ctx.cast(ctx.b.op("exp", x=z), out)


@lowering(aten.geometric.default)
def geometric(ctx, self, p, generator=None):
    """geometric(Tensor self, float p, *, Generator? generator=None) -> Tensor"""
    if not 0 < p < 1:
        raise ctx.unsupported(f"geometric_ with p {p} outside (0, 1) (torch refuses it too)")
    if self.dtype is dt.bool_:
        raise ctx.unsupported("geometric_ on a bool tensor (torch refuses it too)")

    def trials(u):  # up to the first success: floor(log(1 - u) / log(1 - p)) + 1, which is >= 1
        ratio = binary(ctx, "mul", _log_of_complement(ctx, u), 1.0 / math.log1p(-p))
        return binary(ctx, "add", ctx.b.op("floor", x=ratio), 1.0)

    return _transformed_uniform(ctx, self, trials, ctx.out_dtype() or self.dtype)


# -- multinomial -----------------------------------------------------------------------------------

@lowering(aten.multinomial.default)
def multinomial(ctx, self, num_samples, replacement=False, generator=None):
    """multinomial(Tensor self, SymInt num_samples, bool replacement=False, *, Generator? generator=None)
    -> Tensor

    With replacement: random_categorical on log(p), which it normalizes like torch does. Without:
    the Gumbel-top-k trick (the k largest of log(p) + Gumbel noise), which draws categories one after
    another in proportion to the remaining weight, exactly torch's sampling without replacement."""
    if self.rank not in (1, 2):
        raise ctx.unsupported(f"multinomial of a rank-{self.rank} tensor (torch takes rank 1 or 2)")
    if isinstance(num_samples, Var):
        raise ctx.unsupported("multinomial with num_samples known only at run time")
    if num_samples < 1:
        raise ctx.unsupported("multinomial with num_samples < 1 (an empty result)")
    categories = self.shape[-1]
    out = ctx.out_dtype() or dt.int32
    logits = natural_log(ctx, ctx.cast(self, dt.fp32))
    if replacement or num_samples == 1:
        picks = ctx.b.op("random_categorical", x=logits, mode="logits", size=int(num_samples), seed=_SEED)
        return ctx.cast(picks, out)
    if isinstance(categories, int) and num_samples > categories:
        raise ctx.unsupported(f"multinomial of {num_samples} samples from {categories} categories without "
                              "replacement (torch refuses it too)")
    u = _shaped(ctx, uniform_draw(ctx, ctx.shape_var(self)), self.shape)
    gumbel = binary(ctx, "mul", natural_log(ctx, binary(ctx, "mul", natural_log(ctx, u), -1.0)), -1.0)
    _, picks = ctx.b.op("topk", x=ctx.b.op("add", x=logits, y=gumbel), k=int(num_samples), axis=-1,
                        ascending=False)
    return ctx.cast(picks, out)


# -- dropout and rrelu -----------------------------------------------------------------------------

@lowering(aten.native_dropout.default)
def native_dropout(ctx, input, p, train):
    """native_dropout(Tensor input, float p, bool? train) -> (Tensor, Tensor)"""
    # ATen's kernel drops in training mode and when `train` is None; eval is the exact identity.
    if (train is not None and not train) or p == 0:
        return input, (_constant_like(ctx, input, True, dt.bool_) if output_used(ctx, 1) else None)
    if not 0 <= p <= 1:
        raise ctx.unsupported(f"dropout probability {p} outside [0, 1] (torch refuses it too)")
    if not input.dtype.is_float:
        raise ctx.unsupported("dropout of an integer tensor in training mode (torch refuses it too)")
    if p == 1:  # everything dropped: deterministic
        keep = _constant_like(ctx, input, 0.0, input.dtype)
    else:
        (prob,) = ctx.promote(1.0 - p, dtype=input.dtype)
        keep = _shaped(ctx, ctx.b.op("random_bernoulli", shape=ctx.shape_var(input), prob=prob, seed=_SEED),
                       input.shape)
    # As ATen: input * mask * 1/(1-p) (a dropped inf becomes NaN there too).
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    out = ctx.b.op("mul", x=input, y=binary(ctx, "mul", keep, scale))
    return out, (ctx.cast(keep, dt.bool_) if output_used(ctx, 1) else None)


@lowering(aten.rrelu_with_noise_functional.default)
def rrelu_with_noise_functional(ctx, self, noise, lower=0.125, upper=1.0 / 3.0, training=False,
                                generator=None):
    """rrelu_with_noise_functional(Tensor self, Tensor noise, Scalar lower=0.125, Scalar upper=0.333,
    bool training=False, Generator? generator=None) -> (Tensor, Tensor noise_out)

    Training: each non-positive element is scaled by its own slope drawn from U(lower, upper), which
    noise_out records (1 elsewhere). Eval: leaky relu with the mean slope; noise passes through."""
    out_dtype = _float_self(ctx, self, "rrelu")
    lower, upper = float(lower), float(upper)
    if lower > upper:
        raise ctx.unsupported(f"rrelu with lower {lower} > upper {upper} (torch refuses it too)")
    if not training:
        slope = (lower + upper) / 2
        positive = binary(ctx, "greater", self, 0.0)
        return ctx.b.op("select", cond=positive, a=self, b=binary(ctx, "mul", self, slope)), noise
    slopes = _shaped(ctx, uniform_draw(ctx, ctx.shape_var(self), lower, upper, out_dtype), self.shape)
    scaled = binary(ctx, "less_equal", self, 0.0)
    out = ctx.b.op("select", cond=scaled, a=ctx.b.op("mul", x=self, y=slopes), b=self)
    if not output_used(ctx, 1):
        return out, None
    return out, ctx.b.op("select", cond=scaled, a=slopes, b=_constant_like(ctx, self, 1.0, out_dtype))


# -- fractional max pooling ------------------------------------------------------------------------

def _window_starts(ctx, u: Var, size: int, out: int, kernel: int) -> Var:
    """First input index of each of `out` pooling windows along one dim, [N, C, out] int32, from the
    per-plane sample u [N, C, 1] in [0, 1) (Graham's pseudo-random sequence; the last window ends at
    the border). Computed in fp32 with the same operations as ATen, so the windows match."""
    last = size - kernel
    if out > 1:
        alpha = float(np.float32(last) / np.float32(out - 1))
        steps = ctx.const(np.arange(out, dtype=np.float32), dt.fp32)
        ends = ctx.b.op("floor", x=binary(ctx, "mul", ctx.b.op("add", x=steps, y=u), alpha))
        starts = ctx.b.op("sub", x=ends, y=ctx.b.op("floor", x=binary(ctx, "mul", u, alpha)))
    else:
        starts = binary(ctx, "mul", u, 0.0)  # only shapes the result: every entry is `last`
    is_last = ctx.const(np.arange(out) == out - 1, dt.bool_)
    last = ctx.const(np.int32(last), dt.int32)
    return ctx.b.op("select", cond=is_last, a=last, b=ctx.cast(starts, dt.int32))


def _spread(ctx, starts: Var, d: int, nd: int, sizes: list, outs: list) -> Var:
    """Window starts [N, C, out_d] laid out as a gather index along spatial dim d of a tensor whose
    dims before d are still input sizes and whose dims after d are already pooled."""
    axes = list(range(2, 2 + d)) + list(range(3 + d, 2 + nd))
    if axes:
        starts = ctx.b.op("expand_dims", x=starts, axes=axes)
    reps = [1, 1] + sizes[:d] + [1] + outs[d + 1:]
    return starts if all(r == 1 for r in reps) else ctx.b.op("tile", x=starts, reps=reps)


def _fractional_max_pool(ctx, self, kernel_size, output_size, random_samples, nd: int):
    if self.rank not in (nd + 1, nd + 2):
        raise ctx.unsupported(f"fractional_max_pool{nd}d of a rank-{self.rank} tensor")
    x = self if self.rank == nd + 2 else ctx.b.op("expand_dims", x=self, axes=[0])
    sizes = list(x.shape[2:])
    if not all(isinstance(s, int) for s in sizes):
        raise ctx.unsupported(f"fractional_max_pool{nd}d needs static spatial sizes, got {sizes}")
    kernel, outs = list(kernel_size), list(output_size)
    for s, k, o in zip(sizes, kernel, outs):
        if o < 1 or k < 1 or o + k - 1 > s:
            raise ctx.unsupported(f"fractional_max_pool{nd}d of size {sizes} with kernel {kernel} and "
                                  f"output {outs} (torch refuses it too)")
    samples = ctx.cast(random_samples, dt.fp32)
    want_index = output_used(ctx, 1)
    # Separable: reduce the last spatial axis first, then the others, keeping the first maximum in
    # row-major order (a NaN wins, the last one, as in ATen). `where` holds the flat index within the
    # already-reduced trailing axes.
    best, where = x, None
    for d in reversed(range(nd)):
        axis, stride = 2 + d, math.prod(sizes[d + 1:])
        # ATen reads a plane's samples as (w, h) in 2-D but as (t, h, w) in 3-D.
        u = ctx.b.op("expand_dims", x=select_axis(ctx, samples, 2, 1 - d if nd == 2 else d), axes=[-1])
        starts = _window_starts(ctx, u, sizes[d], outs[d], kernel[d])
        # [N, C, out] → the gather index shape: input dims before `d`, outputs after it.
        starts = _spread(ctx, starts, d, nd, sizes, outs)
        value = index = None
        for k in range(kernel[d]):
            pos = starts if k == 0 else ctx.b.op("add", x=starts, y=np.int32(k))
            cand = ctx.b.op("gather_along_axis", x=best, indices=pos, axis=axis)
            if want_index:
                flat = binary(ctx, "mul", pos, stride, dt.int32)
                cand_index = flat if where is None else ctx.b.op(
                    "add", x=flat, y=ctx.b.op("gather_along_axis", x=where, indices=pos, axis=axis))
            if value is None:
                value, index = cand, (cand_index if want_index else None)
                continue
            better = ctx.b.op("logical_or", x=ctx.b.op("greater", x=cand, y=value),
                              y=ctx.b.op("not_equal", x=cand, y=cand))
            value = ctx.b.op("select", cond=better, a=cand, b=value)
            if want_index:
                index = ctx.b.op("select", cond=better, a=cand_index, b=index)
        best, where = value, index
    if self.rank == nd + 1:
        best = ctx.b.op("squeeze", x=best, axes=[0])
        where = ctx.b.op("squeeze", x=where, axes=[0]) if want_index else None
    return best, where


@lowering(aten.fractional_max_pool2d.default)
def fractional_max_pool2d(ctx, self, kernel_size, output_size, random_samples):
    """fractional_max_pool2d(Tensor self, int[2] kernel_size, int[2] output_size, Tensor random_samples) -> (Tensor, Tensor)"""
    return _fractional_max_pool(ctx, self, kernel_size, output_size, random_samples, 2)


@lowering(aten.fractional_max_pool3d.default)
def fractional_max_pool3d(ctx, self, kernel_size, output_size, random_samples):
    """fractional_max_pool3d(Tensor self, int[3] kernel_size, int[3] output_size, Tensor random_samples) -> (Tensor, Tensor)"""
    return _fractional_max_pool(ctx, self, kernel_size, output_size, random_samples, 3)
