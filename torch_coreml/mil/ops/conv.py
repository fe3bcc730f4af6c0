"""Convolutions: `conv`, `conv_quantized` and `conv_transpose` over 1 to 3 spatial dims (NC* layout).

Also the spatial-window arithmetic shared with pool.py: how `pad_type` turns into explicit padding and
how big the output gets. "same" pads so that out = ceil(in / stride), the odd element going after the
data; "same_lower" puts it before. A symbolic input dim gives a fresh symbolic output dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import dtypes as dt
from ..targets import Target
from ..types import Symbol, TensorType, is_static_dim
from .spec import In, mil_op

PAD_TYPES = ("valid", "same", "same_lower", "custom")


# ------------------------------------------------------------------------------------ window arithmetic

def _scalar(v):
    # Workaround: dtypes.numpy_to_torch turns a 0-d const into shape [1] (np.ascontiguousarray), so a
    # scalar param can arrive as a one-element list. Remove once that is fixed.
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def effective_kernel(kernel, dilations):
    return [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]


def explicit_pads(pad_type, in_dims, kernel, strides, dilations, pad):
    """(before, after) padding per spatial dim, for static `in_dims` (real sizes in kernels)."""
    if pad_type == "valid":
        return [(0, 0)] * len(in_dims)
    if pad_type == "custom":
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(in_dims))]
    pads = []
    for i, k, s in zip(in_dims, effective_kernel(kernel, dilations), strides):
        total = max(0, s * -(-i // s) - i + k - s)
        before = total // 2 if pad_type == "same" else total - total // 2
        pads.append((before, total - before))
    return pads


def window_count(size, total_pad, k_eff, stride, ceil_mode=False):
    """Number of window positions along one dim (PyTorch's rule for ceil_mode: the last window must
    start inside the input or its left padding, approximated by half the total padding)."""
    if not ceil_mode:
        return (size + total_pad - k_eff) // stride + 1
    out = (size + total_pad - k_eff + stride - 1) // stride + 1
    if total_pad > 0 and (out - 1) * stride >= size + total_pad / 2:
        out -= 1
    return out


def spatial_out_shape(ctx, in_dims, kernel, strides, dilations, pad_type, pad, ceil_mode=False):
    """Output spatial dims for type inference; symbolic input dims give fresh symbols."""
    out = []
    for r, size in enumerate(in_dims):
        if not is_static_dim(size):
            out.append(Symbol.fresh())
            continue
        (before, after), = explicit_pads(pad_type, [size], [kernel[r]], [strides[r]], [dilations[r]],
                                         pad[2 * r:2 * r + 2])
        n = window_count(size, before + after, effective_kernel([kernel[r]], [dilations[r]])[0],
                         strides[r], ceil_mode)
        if n <= 0:
            raise ctx.error(f"spatial dim {r} (size {size}) gives an empty output ({n}) with kernel "
                            f"{kernel[r]}, stride {strides[r]}, dilation {dilations[r]}, padding "
                            f"{pad_type} {(before, after)}")
        out.append(n)
    return out


def check_window_params(ctx, n_spatial, **params):
    """Each list param must have one entry per spatial dim (`pad`: two per dim), all positive but pad."""
    for name, value in params.items():
        want = 2 * n_spatial if name == "pad" else n_spatial
        if value is None or len(value) != want:
            raise ctx.error(f"input {name!r} must have {want} entries for {n_spatial} spatial dims, "
                            f"got {value}")
        if name == "pad" and any(v < 0 for v in value) or name != "pad" and any(v < 1 for v in value):
            raise ctx.error(f"input {name!r} has an out-of-range entry: {value}")


def check_pad_type(ctx, pad_type, allowed=PAD_TYPES):
    if pad_type not in allowed:
        raise ctx.error(f"input 'pad_type' must be one of {list(allowed)}, got {pad_type!r}")
    if pad_type == "same_lower" and ctx.target == Target.iOS15:
        raise ctx.error("input 'pad_type' 'same_lower' needs iOS16 or newer")


def pad_spatial(x, pads, value=0.0):
    """F.pad with (before, after) pairs for the trailing spatial dims, in dim order."""
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(x, flat, value=value) if any(flat) else x


def _spatial_defaults(fill):
    return lambda ctx: [fill] * (ctx.rank("x") - 2)


def _from_consts(var, depth=0) -> bool:
    """True when `var` is known at compile time: a const, or computed only from consts."""
    if var.is_const:
        return True
    op = var.op
    if op is None or depth > 64:
        return False
    if op.op_type.startswith("constexpr_"):
        return True
    ins = list(op.input_vars())
    return bool(ins) and all(_from_consts(v, depth + 1) for v in ins)


# ------------------------------------------------------------------------------------------------ conv

def _conv_rank(ctx):
    x, w = ctx.shape("x"), ctx.shape("weight")
    if not 3 <= len(x) <= 5:
        raise ctx.error(f"input 'x' must be [N, C_in, *D] with 1 to 3 spatial dims, got shape {x}")
    if len(w) != len(x):
        raise ctx.error(f"input 'weight' must have the rank of 'x' ({len(x)}), got shape {w}")
    return len(x) - 2


def _infer_conv(ctx):
    n = _conv_rank(ctx)
    x, w = ctx.shape("x"), ctx.shape("weight")
    groups = ctx.param("groups")
    strides, dilations, pad_type = ctx.param("strides"), ctx.param("dilations"), ctx.param("pad_type")
    pad = ctx.param("pad") if pad_type == "custom" else [0] * (2 * n)
    check_pad_type(ctx, pad_type)
    check_window_params(ctx, n, strides=strides, dilations=dilations, pad=pad)
    if groups < 1:
        raise ctx.error(f"input 'groups' must be >= 1, got {groups}")
    c_out, c_in = w[0], x[1]
    if is_static_dim(c_in):
        if c_in % groups:
            raise ctx.error(f"C_in ({c_in}) is not divisible by 'groups' ({groups})")
        if is_static_dim(w[1]) and c_in // groups != w[1]:
            raise ctx.error(f"input 'weight' dim 1 must be C_in / groups = {c_in // groups}, got {w[1]}")
    if ctx.has("bias"):
        b = ctx.shape("bias")
        if len(b) != 1 or (is_static_dim(b[0]) and is_static_dim(c_out) and b[0] != c_out):
            raise ctx.error(f"input 'bias' must have shape [{c_out}], got {b}")
    if any(d > 1 for d in dilations) and not _from_consts(ctx.var("weight")):
        raise ctx.error("input 'weight' must be a compile-time constant when 'dilations' are not 1")
    if not all(is_static_dim(k) for k in w[2:]):
        raise ctx.error(f"input 'weight' must have static kernel dims, got {w}")
    spatial = spatial_out_shape(ctx, x[2:], w[2:], strides, dilations, pad_type, pad)
    return TensorType(ctx.dtype("x"), (x[0], c_out, *spatial))


def _conv_inputs(w_types, bias_const):
    return [
        In("x", "T"), In("weight", w_types), In("bias", w_types, const=bias_const, optional=True),
        In("strides", dt.INTS, const=True, optional=True, param=True, default=_spatial_defaults(1)),
        In("pad_type", (dt.string,), const=True, optional=True, default="valid"),
        In("pad", dt.INTS, const=True, optional=True, param=True,
           default=lambda ctx: [0] * (2 * (ctx.rank("x") - 2))),
        In("dilations", dt.INTS, const=True, optional=True, param=True, default=_spatial_defaults(1)),
        In("groups", dt.INTS, const=True, optional=True, param=True, default=1),
    ]


_CONV_FNS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _conv(x, weight, bias, strides, pad_type, pad, dilations, groups):
    tensors = [x, weight] + ([bias] if bias is not None else [])
    common = x.dtype if x.dtype == weight.dtype else torch.float32
    x, weight, *rest = [t.to(common) for t in tensors]
    k = list(weight.shape[2:])
    pads = explicit_pads(pad_type, list(x.shape[2:]), k, strides, dilations, pad)
    x = pad_spatial(x, pads)
    return _CONV_FNS[x.dim() - 2](x, weight, rest[0] if rest else None, stride=strides,
                                  dilation=dilations, groups=groups)


@mil_op("conv", inputs=_conv_inputs("U", bias_const=False), infer=_infer_conv, since=Target.iOS17,
        domains={"T": dt.FLOATS, "U": dt.FLOATS})
@mil_op("conv", inputs=_conv_inputs("T", bias_const=True), infer=_infer_conv, domains={"T": dt.FLOATS})
def conv(x, weight, bias, strides, pad_type, pad, dilations, groups):
    """Cross-correlation of x [N, C_in, *D] with weight [C_out, C_in / groups, *K], plus bias [C_out].

    pad_type: "valid" (none), "custom" (`pad` = before/after pairs per spatial dim), "same" (out =
    ceil(D / stride), an odd padding's extra element after the data) or "same_lower" (extra before;
    iOS16+). groups: C_in and C_out are split into that many independent convolutions.
    From iOS17 weight and bias may have their own float dtype and bias may be a runtime value.
    """
    return _conv(x, weight, bias, strides, pad_type, pad, dilations, _scalar(groups))


def _infer_conv_quantized(ctx):
    qtype = ctx.param("quantization_type")
    if qtype != "linear":
        raise ctx.error(f"input 'quantization_type' {qtype!r} is not supported; only 'linear' is")
    nbits = ctx.param("nbits")
    if not 1 <= nbits <= 8:
        raise ctx.error(f"input 'nbits' must be in [1, 8], got {nbits}")
    c_out = ctx.shape("weight")[0]
    for name in ("quant_scale", "quant_bias"):
        size = ctx.type(name).numel()
        if size not in (1, c_out):
            raise ctx.error(f"input {name!r} must hold 1 or C_out ({c_out}) values, got {size}")
    return _infer_conv(ctx)


@mil_op("conv_quantized", infer=_infer_conv_quantized,
        domains={"T": (dt.fp32, dt.fp16), "U": (dt.uint8,)},
        inputs=[
            In("x", "T"), In("weight", "U"), In("bias", "U", const=True, optional=True),
            In("quantization_type", (dt.string,), const=True),
            In("nbits", dt.INTS, const=True, optional=True, param=True, default=8),
            In("quant_scale", "T", const=True), In("quant_bias", "T", const=True),
            *_conv_inputs("U", bias_const=True)[3:]])
def conv_quantized(x, weight, bias, quantization_type, nbits, quant_scale, quant_bias, strides,
                   pad_type, pad, dilations, groups):
    """`conv` with uint8 weights dequantized first: w = weight * quant_scale + quant_bias, the scale
    and offset being one value or one per output channel. Only "linear" quantization is supported.
    """
    per_channel = (-1,) + (1,) * (weight.dim() - 1)
    scale = quant_scale.float().reshape(per_channel)
    w = weight.float() * scale + quant_bias.float().reshape(per_channel)
    b = None if bias is None else bias.float()
    return _conv(x.float(), w, b, strides, pad_type, pad, dilations, _scalar(groups))


# -------------------------------------------------------------------------------------- conv_transpose

def _infer_conv_transpose(ctx):
    n = _conv_rank(ctx)
    x, w = ctx.shape("x"), ctx.shape("weight")
    groups = ctx.param("groups")
    if groups < 1:
        raise ctx.error(f"input 'groups' must be >= 1, got {groups}")
    c_out = w[1] * groups if is_static_dim(w[1]) else Symbol.fresh()
    if _mismatch_static(x[1], w[0]):
        raise ctx.error(f"input 'weight' dim 0 must be C_in ({x[1]}), got {w[0]}")
    if ctx.has("bias"):
        b = ctx.shape("bias")
        if len(b) != 1 or _mismatch_static(b[0], c_out):
            raise ctx.error(f"input 'bias' must have shape [{c_out}], got {b}")
    pad_type = ctx.param("pad_type")
    check_pad_type(ctx, pad_type, ("valid", "same", "custom"))
    strides, dilations = ctx.param("strides"), ctx.param("dilations")
    pad = ctx.param("pad") if pad_type == "custom" else [0] * (2 * n)
    check_window_params(ctx, n, strides=strides, dilations=dilations, pad=pad)
    if ctx.has("output_shape"):
        shape = [int(v) for v in ctx.param("output_shape")]
        if len(shape) != n + 2 or _mismatch_static(shape[0], x[0]) or _mismatch_static(shape[1], c_out):
            raise ctx.error(f"input 'output_shape' {shape} must be [N, C_out, *D_out] = "
                            f"[{x[0]}, {c_out}, ...] with {n} spatial dims")
        return TensorType(ctx.dtype("x"), shape)
    if not all(is_static_dim(k) for k in w[2:]):
        raise ctx.error(f"input 'weight' must have static kernel dims, got {w}")
    k_eff = effective_kernel(w[2:], dilations)
    spatial = []
    for r, size in enumerate(x[2:]):
        if not is_static_dim(size):
            spatial.append(Symbol.fresh())
        elif pad_type == "same":
            spatial.append(size * strides[r])
        else:
            spatial.append((size - 1) * strides[r] + k_eff[r] - pad[2 * r] - pad[2 * r + 1])
        if is_static_dim(spatial[-1]) and spatial[-1] <= 0:
            raise ctx.error(f"spatial dim {r} gives an empty output ({spatial[-1]})")
    return TensorType(ctx.dtype("x"), (x[0], c_out, *spatial))


def _mismatch_static(a, b) -> bool:
    return is_static_dim(a) and is_static_dim(b) and a != b


def _conv_transpose_inputs(w_types, const_weights):
    return [
        In("x", "T"), In("weight", w_types, const=const_weights),
        In("bias", w_types, const=const_weights, optional=True),
        In("pad", dt.INTS, const=True, optional=True, param=True,
           default=lambda ctx: [0] * (2 * (ctx.rank("x") - 2))),
        In("output_shape", dt.INTS, const=True, optional=True, param=True),
        In("pad_type", (dt.string,), const=True, optional=True, default="valid"),
        In("strides", dt.INTS, const=True, optional=True, param=True, default=_spatial_defaults(1)),
        In("dilations", dt.INTS, const=True, optional=True, param=True, default=_spatial_defaults(1)),
        In("groups", dt.INTS, const=True, optional=True, param=True, default=1),
    ]


_CONV_T_FNS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@mil_op("conv_transpose", inputs=_conv_transpose_inputs("U", False), infer=_infer_conv_transpose,
        since=Target.iOS17, domains={"T": dt.FLOATS, "U": dt.FLOATS})
@mil_op("conv_transpose", inputs=_conv_transpose_inputs("T", True), infer=_infer_conv_transpose,
        domains={"T": dt.FLOATS})
def conv_transpose(x, weight, bias, pad, output_shape, pad_type, strides, dilations, groups):
    """Transposed convolution (the gradient of `conv` w.r.t. its input), weight [C_in, C_out/groups, *K].

    The full result has (D - 1) * stride + (K - 1) * dilation + 1 elements per spatial dim; padding
    crops it: "valid" keeps it all, "custom" drops pad[2i] before and pad[2i+1] after, "same" keeps
    D * stride elements, cropping like the `conv` "same" padding that would map them back to D.
    output_shape, when given, fixes the output size (zeros are appended where the full result is short).
    From iOS17 weight and bias may be runtime values with their own float dtype.
    """
    common = x.dtype if x.dtype == weight.dtype else torch.float32
    x, weight = x.to(common), weight.to(common)
    n = x.dim() - 2
    full = _CONV_T_FNS[n](x, weight, stride=strides, dilation=dilations, groups=_scalar(groups))
    starts, sizes = [], []
    for r in range(n):
        size_full = full.shape[2 + r]
        if output_shape is not None:
            size = output_shape[2 + r]
        elif pad_type == "same":
            size = x.shape[2 + r] * strides[r]
        elif pad_type == "custom":
            size = size_full - pad[2 * r] - pad[2 * r + 1]
        else:
            size = size_full
        start = pad[2 * r] if pad_type == "custom" else 0
        if pad_type == "same":
            start = max(size_full - size, 0) // 2
        starts.append(start)
        sizes.append(size)
    for r, (start, size) in enumerate(zip(starts, sizes)):
        dim = 2 + r
        have = full.shape[dim] - start
        full = full.narrow(dim, start, min(size, have))
        if have < size:
            grow = [0, 0] * (full.dim() - dim - 1) + [0, size - have]
            full = F.pad(full, grow)
    if bias is not None:
        full = full + bias.to(common).reshape((-1,) + (1,) * n)
    return full
