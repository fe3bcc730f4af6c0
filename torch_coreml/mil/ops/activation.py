"""Activation MIL ops (fp16/fp32 only; each output has the type of `x`).

Ops with `alpha`/`beta` constants exist twice: in iOS15 the constants share x's dtype (type variable
T); from iOS17 they may have their own float dtype (U). Mixed dtypes are computed in the wider one and
the result takes x's dtype. `prelu` and `softplus_parametric` apply one alpha (and beta) per channel,
the channel being axis 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import dtypes as dt
from ..targets import Target
from ..types import Symbol
from .infer import normalize_axis, same_as
from .spec import In, mil_op

_T = {"T": dt.FLOATS}
_TU = {"T": dt.FLOATS, "U": dt.FLOATS}


def _promote(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Bring x and its constants to one dtype: the wider of them (fp32 wins over fp16)."""
    wide = tensors[0].dtype
    for t in tensors[1:]:
        wide = torch.promote_types(wide, t.dtype)
    return [t.to(wide) for t in tensors]


def _with_params(name: str, params: tuple[str, ...], infer=same_as("x")):
    """Register a kernel as `name`@iOS15 (params typed T) and `name`@iOS17 (params typed U)."""

    def register(kernel):
        for since, ptype, domains in ((Target.iOS15, "T", _T), (Target.iOS17, "U", _TU)):
            inputs = [In("x", "T")] + [In(p, ptype, const=True) for p in params]
            mil_op(name, since=since, inputs=inputs, domains=domains, infer=infer)(kernel)
        return kernel

    return register


def _unary(name: str):
    return mil_op(name, since=Target.iOS15, inputs=[In("x", "T")], domains=_T, infer=same_as("x"))


# -- parameter-free activations ------------------------------------------------------------------

@_unary("relu")
def relu(x):
    """max(x, 0)."""
    return torch.relu(x)


@_unary("relu6")
def relu6(x):
    """min(max(x, 0), 6)."""
    return torch.clamp(x, 0, 6)


@_unary("sigmoid")
def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x))."""
    return torch.sigmoid(x)


@_unary("silu")
def silu(x):
    """Sigmoid-weighted linear unit (swish): x * sigmoid(x)."""
    return F.silu(x)


@_unary("softplus")
def softplus(x):
    """log(1 + exp(x)), computed without overflow for large x."""
    return _softplus(x)


@_unary("softsign")
def softsign(x):
    """x / (1 + |x|)."""
    return F.softsign(x)


def _softplus(z: torch.Tensor) -> torch.Tensor:
    # log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): exact, and exp never overflows.
    return torch.relu(z) + torch.log1p(torch.exp(-torch.abs(z)))


# -- activations with scalar constants -----------------------------------------------------------

@_with_params("clamped_relu", ("alpha", "beta"))
def clamped_relu(x, alpha, beta):
    """Leaky ReLU capped from above: min(beta, x) for x >= 0, else min(beta, alpha * x)."""
    x, alpha, beta = _promote(x, alpha, beta)
    return torch.minimum(torch.where(x >= 0, x, alpha * x), beta)


@_with_params("elu", ("alpha",))
def elu(x, alpha):
    """Exponential linear unit: x for x > 0, else alpha * (exp(x) - 1)."""
    x, alpha = _promote(x, alpha)
    return torch.where(x > 0, x, alpha * torch.expm1(x))


@_with_params("leaky_relu", ("alpha",))
def leaky_relu(x, alpha):
    """x for x >= 0, else alpha * x."""
    x, alpha = _promote(x, alpha)
    return torch.where(x >= 0, x, alpha * x)


@_with_params("linear_activation", ("alpha", "beta"))
def linear_activation(x, alpha, beta):
    """The affine map alpha * x + beta."""
    x, alpha, beta = _promote(x, alpha, beta)
    return alpha * x + beta


@_with_params("scaled_tanh", ("alpha", "beta"))
def scaled_tanh(x, alpha, beta):
    """alpha * tanh(beta * x)."""
    x, alpha, beta = _promote(x, alpha, beta)
    return alpha * torch.tanh(beta * x)


@_with_params("sigmoid_hard", ("alpha", "beta"))
def sigmoid_hard(x, alpha, beta):
    """A piecewise-linear sigmoid: min(max(alpha * x + beta, 0), 1)."""
    x, alpha, beta = _promote(x, alpha, beta)
    return torch.clamp(alpha * x + beta, 0, 1)


@_with_params("thresholded_relu", ("alpha",))
def thresholded_relu(x, alpha):
    """x where x >= alpha, else 0."""
    x, alpha = _promote(x, alpha)
    return torch.where(x >= alpha, x, torch.zeros((), dtype=x.dtype))


# -- per-channel activations (channel = axis 1) --------------------------------------------------

def _check_channel_param(ctx, name: str):
    value = ctx.value(name)
    if value.ndim != 1:
        raise ctx.error(f"input {name!r} must have rank 1 (one value per channel), got shape {value.shape}")
    channels = ctx.shape("x")[1]
    # A symbolic channel count can only be checked at run time.
    if not isinstance(channels, Symbol) and value.shape[0] != channels:
        raise ctx.error(f"input {name!r} has {value.shape[0]} values but x has {channels} channels (axis 1)")


def _infer_prelu(ctx):
    rank = ctx.rank("x")
    if rank not in (3, 4, 5):
        raise ctx.error(f"input 'x' must have rank 3, 4 or 5, got rank {rank}")
    _check_channel_param(ctx, "alpha")
    alpha = ctx.value("alpha").astype(np.float32)
    # Core ML runs rank-3 and rank-5 prelu only with one shared alpha.
    if rank in (3, 5) and np.any(np.abs(alpha - alpha[0]) > 1e-5):
        raise ctx.error(f"input 'alpha' must hold one repeated value when x has rank {rank}")
    return ctx.type("x")


def _per_channel(p: torch.Tensor, rank: int) -> torch.Tensor:
    """Reshape a [C] vector so it broadcasts along axis 1 of a rank-`rank` tensor."""
    return p.reshape((1, -1) + (1,) * (rank - 2))


@_with_params("prelu", ("alpha",), infer=_infer_prelu)
def prelu(x, alpha):
    """Leaky ReLU with one slope per channel: x where x > 0, else alpha[c] * x.

    x has rank 3, 4 or 5 with channels on axis 1; alpha has shape [C].
    """
    x, alpha = _promote(x, alpha)
    return torch.where(x > 0, x, _per_channel(alpha, x.dim()) * x)


def _infer_softplus_parametric(ctx):
    if ctx.rank("x") < 3:
        raise ctx.error(f"input 'x' must have rank 3 or more, got rank {ctx.rank('x')}")
    _check_channel_param(ctx, "alpha")
    _check_channel_param(ctx, "beta")
    return ctx.type("x")


@_with_params("softplus_parametric", ("alpha", "beta"), infer=_infer_softplus_parametric)
def softplus_parametric(x, alpha, beta):
    """Per-channel scaled softplus: alpha[c] * log(1 + exp(beta[c] * x)), channels on axis 1."""
    x, alpha, beta = _promote(x, alpha, beta)
    return _per_channel(alpha, x.dim()) * _softplus(_per_channel(beta, x.dim()) * x)


# -- gelu and softmax ----------------------------------------------------------------------------

_GELU_MODES = ("EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION")


def _infer_gelu(ctx):
    mode = ctx.value("mode")
    if mode not in _GELU_MODES:
        raise ctx.error(f"input 'mode' is {mode!r}, expected one of {list(_GELU_MODES)}")
    return ctx.type("x")


@mil_op("gelu", since=Target.iOS15, domains=_T, infer=_infer_gelu,
        inputs=[In("x", "T"), In("mode", (dt.string,), const=True, optional=True, default="EXACT")])
def gelu(x, mode):
    """Gaussian error linear unit, x * P(N(0, 1) <= x), in one of three forms chosen by `mode`:

    EXACT (default): 0.5 * x * (1 + erf(x / sqrt(2)));
    TANH_APPROXIMATION: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)));
    SIGMOID_APPROXIMATION: x * sigmoid(1.702 * x).
    """
    if mode == "SIGMOID_APPROXIMATION":
        return x * torch.sigmoid(1.702 * x)
    return F.gelu(x, approximate="tanh" if mode == "TANH_APPROXIMATION" else "none")


def _infer_softmax(ctx):
    normalize_axis(ctx, ctx.param("axis"), ctx.rank("x"))
    return ctx.type("x")


@mil_op("softmax", since=Target.iOS15, domains=_T, infer=_infer_softmax,
        inputs=[In("x", "T"), In("axis", (dt.int32,), const=True, optional=True, param=True, default=-1)])
def softmax(x, axis):
    """exp(x) normalized to sum to 1 along `axis` (default -1, the last axis)."""
    return torch.softmax(x, dim=axis)

