"""Image resizing ops, iOS15 and iOS16: upsample/resize (nearest and bilinear), crop, crop_resize,
affine and resample. iOS17 versions live in `image_resizing_ios17.py`.

All ops resize the last two axes (height, width) unless said otherwise. The bilinear ops place output
sample i at a position of the input axis chosen by a *sampling mode* (`_grid`):

    STRICT_ALIGN_CORNERS  i * (n_in - 1) / (n_out - 1)         (0 when n_out == 1)
    ALIGN_CORNERS         the same, but (n_in - 1) / 2 when n_out == 1
    DEFAULT               i * n_in / n_out
    OFFSET_CORNERS        (i + 0.5) * max(1, n_in - 1) / n_out
    UNALIGN_CORNERS       (i + 0.5) * n_in / n_out - 0.5         (half-pixel centres)

clamped to [0, n_in - 1], then interpolate linearly between the two neighbouring input samples.
Positions are computed in float64 from the runtime sizes; data is interpolated in its own dtype.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import Symbol, TensorType
from .spec import In, mil_op

FLOATS = (dt.fp16, dt.fp32)
SAMPLING_MODES = ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS")
BOX_MODES = ("CORNERS_HEIGHT_FIRST", "CORNERS_WIDTH_FIRST", "CENTER_SIZE_HEIGHT_FIRST",
             "CENTER_SIZE_WIDTH_FIRST")


# -- shared kernels -------------------------------------------------------------------------------
def _grid(mode: str, n_in: int, n_out: int) -> torch.Tensor:
    """Sample positions (float64, length n_out) on an input axis of n_in samples; see module doc."""
    i = torch.arange(n_out, dtype=torch.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            pos = torch.full((1,), (n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0, dtype=torch.float64)
        else:
            pos = i * ((n_in - 1) / (n_out - 1))
    elif mode == "DEFAULT":
        pos = i * (n_in / n_out)
    elif mode == "OFFSET_CORNERS":
        pos = (i + 0.5) * (max(1, n_in - 1) / n_out)
    elif mode == "UNALIGN_CORNERS":
        pos = (i + 0.5) * (n_in / n_out) - 0.5
    else:
        raise ValueError(f"unknown sampling mode {mode!r}")
    return pos.clamp(0, max(n_in - 1, 0))


def lerp_axis(x: torch.Tensor, axis: int, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of `x` along `axis` at float positions `pos` (inside [0, size - 1])."""
    if not x.is_floating_point():
        x = x.to(torch.float32)
    n = x.shape[axis]
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    view = [1] * x.dim()
    view[axis] = -1
    w = (pos - lo.to(pos.dtype)).to(x.dtype).reshape(view)
    return x.index_select(axis, lo) * (1 - w) + x.index_select(axis, hi) * w


def resize_axis_linear(x: torch.Tensor, axis: int, n_out: int, mode: str) -> torch.Tensor:
    return lerp_axis(x, axis, _grid(mode, x.shape[axis], n_out))


def nearest_index(n_in: int, n_out: int, half_pixel: bool) -> torch.Tensor:
    """Source index of each output sample: floor(i * n_in / n_out), or floor((i + 0.5) * n_in / n_out)
    with half-pixel centres; exact integer arithmetic, clamped to the input."""
    i = torch.arange(n_out, dtype=torch.int64)
    idx = ((2 * i + 1) * n_in) // (2 * n_out) if half_pixel else (i * n_in) // n_out
    return idx.clamp(max=max(n_in - 1, 0))


def scaled_size(dim: int, scale) -> int:
    """floor(dim * scale), computed in float32 as MIL's scale factors are."""
    return int(np.floor(np.float32(scale) * np.float32(dim)))


# -- shared type-inference helpers ---------------------------------------------------------------
def need_rank(ctx, name: str, lo: int, exact: bool = False):
    r = ctx.rank(name)
    if (exact and r != lo) or r < lo:
        raise ctx.error(f"input {name!r} must have rank {'' if exact else 'at least '}{lo}, got {ctx.type(name)}")


def need_choice(ctx, name: str, choices, fold_case: bool = False):
    val = ctx.param(name)
    if (val.lower() if fold_case else val) not in choices:
        raise ctx.error(f"input {name!r} must be one of {list(choices)}, got {val!r}")
    return val


def _scaled_dim(d, scale):
    return scaled_size(d, scale) if isinstance(d, int) else Symbol.fresh()


def _infer_upsample(ctx):
    need_rank(ctx, "x", 3)
    shape = list(ctx.shape("x"))
    shape[-2] = _scaled_dim(shape[-2], ctx.param("scale_factor_height"))
    shape[-1] = _scaled_dim(shape[-1], ctx.param("scale_factor_width"))
    return TensorType(ctx.dtype("x"), tuple(shape))


_SCALES = [In("scale_factor_height", "U", const=True, optional=True, default=1, param=True),
           In("scale_factor_width", "U", const=True, optional=True, default=1, param=True)]


# -- nearest neighbour ------------------------------------------------------------------------------
@mil_op("upsample_nearest_neighbor", domains={"T": FLOATS, "U": (dt.fp32, dt.int32)},
        inputs=[In("x", "T"), *_SCALES], infer=_infer_upsample)
def upsample_nearest_neighbor(x, scale_factor_height, scale_factor_width):
    """Scales height and width by (possibly fractional) factors, output size floor(size * factor);
    output sample i copies input sample floor(i * in_size / out_size)."""
    h, w = x.shape[-2:]
    ho, wo = scaled_size(h, scale_factor_height), scaled_size(w, scale_factor_width)
    x = x.index_select(-2, nearest_index(h, ho, False))
    return x.index_select(-1, nearest_index(w, wo, False))


def _infer_resize_to(ctx, h_name: str, w_name: str):
    need_rank(ctx, "x", 3)
    shape = list(ctx.shape("x"))
    shape[-2], shape[-1] = int(ctx.param(h_name)), int(ctx.param(w_name))
    return TensorType(ctx.dtype("x"), tuple(shape))


@mil_op("resize_nearest_neighbor", domains={"T": FLOATS},
        inputs=[In("x", "T"), In("target_size_height", (dt.int32,), const=True, param=True),
                In("target_size_width", (dt.int32,), const=True, param=True)],
        infer=lambda ctx: _infer_resize_to(ctx, "target_size_height", "target_size_width"))
def resize_nearest_neighbor(x, target_size_height, target_size_width):
    """Resizes height and width to the given sizes; output sample i copies input sample
    floor((i + 0.5) * in_size / out_size) (half-pixel centres)."""
    h, w = x.shape[-2:]
    x = x.index_select(-2, nearest_index(h, target_size_height, True))
    return x.index_select(-1, nearest_index(w, target_size_width, True))


# -- bilinear ---------------------------------------------------------------------------------------
def _upsample_bilinear(x, sh, sw, mode):
    h, w = x.shape[-2:]
    x = resize_axis_linear(x, x.dim() - 2, scaled_size(h, sh), mode)
    return resize_axis_linear(x, x.dim() - 1, scaled_size(w, sw), mode)


_ALIGN = In("align_corners", (dt.bool_,), const=True, optional=True, default=True, param=True)


@mil_op("upsample_bilinear", domains={"T": FLOATS, "U": (dt.int32, dt.fp32)},
        inputs=[In("x", "T"), *_SCALES, _ALIGN], infer=_infer_upsample)
def upsample_bilinear(x, scale_factor_height, scale_factor_width, align_corners):
    """Bilinear upsampling by scale factors; the output size is floor(size * factor) and positions
    use the recomputed ratio in_size / out_size. `align_corners` maps the corner samples onto each
    other (STRICT_ALIGN_CORNERS); otherwise half-pixel centres are used (UNALIGN_CORNERS)."""
    mode = "STRICT_ALIGN_CORNERS" if align_corners else "UNALIGN_CORNERS"
    return _upsample_bilinear(x, scale_factor_height, scale_factor_width, mode)


@mil_op("upsample_bilinear", since=Target.iOS16, domains={"T": FLOATS, "U": (dt.int32, dt.fp32)},
        inputs=[In("x", "T"), *_SCALES, _ALIGN,
                In("half_pixel_centers", (dt.bool_,), const=True, optional=True, param=True)],
        infer=_infer_upsample)
def upsample_bilinear_ios16(x, scale_factor_height, scale_factor_width, align_corners,
                            half_pixel_centers):
    """As iOS15 `upsample_bilinear`, plus `half_pixel_centers` (default: not `align_corners`).
    align_corners=False with half_pixel_centers=False samples at i * in_size / out_size (DEFAULT);
    when both are true (a combination left undocumented) half-pixel centres win."""
    half = (not align_corners) if half_pixel_centers is None else half_pixel_centers
    mode = "UNALIGN_CORNERS" if half else ("STRICT_ALIGN_CORNERS" if align_corners else "DEFAULT")
    return _upsample_bilinear(x, scale_factor_height, scale_factor_width, mode)


def _infer_resize_bilinear(ctx):
    need_choice(ctx, "sampling_mode", SAMPLING_MODES)
    return _infer_resize_to(ctx, "target_size_height", "target_size_width")


@mil_op("resize_bilinear", domains={"T": FLOATS}, infer=_infer_resize_bilinear, inputs=[
    In("x", "T"),
    In("target_size_height", (dt.int32,), const=True, optional=True, default=1, param=True),
    In("target_size_width", (dt.int32,), const=True, optional=True, default=1, param=True),
    In("sampling_mode", (dt.string,), const=True, optional=True, default="DEFAULT", param=True)])
def resize_bilinear(x, target_size_height, target_size_width, sampling_mode):
    """Bilinear resize of height and width to the target sizes, positions chosen by `sampling_mode`
    (see the module doc)."""
    x = resize_axis_linear(x, x.dim() - 2, target_size_height, sampling_mode)
    return resize_axis_linear(x, x.dim() - 1, target_size_width, sampling_mode)


# -- crop -------------------------------------------------------------------------------------------
def _infer_crop(ctx):
    need_rank(ctx, "x", 3)
    shape = list(ctx.shape("x"))
    for axis, name in ((-2, "crop_height"), (-1, "crop_width")):
        amounts = [int(v) for v in np.asarray(ctx.value(name)).reshape(-1)]
        if len(amounts) != 2:
            raise ctx.error(f"input {name!r} must hold 2 values (before, after), got {amounts}")
        d = shape[axis]
        if isinstance(d, int):
            if d - sum(amounts) < 0:
                raise ctx.error(f"input {name!r} {amounts} crops more than the size {d}")
            shape[axis] = d - sum(amounts)
        elif sum(amounts):
            shape[axis] = Symbol.fresh()
    return TensorType(ctx.dtype("x"), tuple(shape))


@mil_op("crop", domains={"T": FLOATS}, infer=_infer_crop,
        inputs=[In("x", "T"), In("crop_height", (dt.int32,), const=True, param=True),
                In("crop_width", (dt.int32,), const=True, param=True)])
def crop(x, crop_height, crop_width):
    """Removes crop_height = [top, bottom] rows and crop_width = [left, right] columns."""
    (top, bottom), (left, right) = list(np.reshape(crop_height, -1)), list(np.reshape(crop_width, -1))
    h, w = x.shape[-2:]
    return x[..., top:h - bottom, left:w - right]


# -- crop_resize ------------------------------------------------------------------------------------
def _box_positions(start: float, end: float, n_out: int, mode: str) -> torch.Tensor:
    """Sample positions along one axis of a box [start, end] (pixel coordinates; end < start flips).
    Align modes split the box into n_out - 1 equal steps; the other modes treat the box as an axis of
    end - start + 1 samples and apply the same formula as `_grid`."""
    span = end - start
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            rel = torch.tensor([span / 2 if mode == "ALIGN_CORNERS" else 0.0], dtype=torch.float64)
        else:
            rel = torch.arange(n_out, dtype=torch.float64) * (span / (n_out - 1))
    else:
        i = torch.arange(n_out, dtype=torch.float64)
        n_in = span + 1
        rel = {"DEFAULT": i * (n_in / n_out),
               "OFFSET_CORNERS": (i + 0.5) * (max(1.0, n_in - 1) / n_out),
               "UNALIGN_CORNERS": (i + 0.5) * (n_in / n_out) - 0.5}[mode]
        rel = rel.clamp(min(0.0, span), max(0.0, span))
    return start + rel


def corners(boxes: torch.Tensor, box_mode: str) -> torch.Tensor:
    """[N, 4] boxes in `box_mode` -> [N, 4] as (h_start, w_start, h_end, w_end), float64."""
    b = boxes.to(torch.float64)
    if box_mode == "CORNERS_HEIGHT_FIRST":
        return b
    if box_mode == "CORNERS_WIDTH_FIRST":
        return b[:, [1, 0, 3, 2]]
    if box_mode == "CENTER_SIZE_WIDTH_FIRST":
        b = b[:, [1, 0, 3, 2]]
    ch, cw, sh, sw = b.unbind(1)
    return torch.stack([ch - sh / 2, cw - sw / 2, ch + sh / 2, cw + sw / 2], 1)


def crop_resize_images(images: torch.Tensor, boxes: torch.Tensor, th: int, tw: int, normalized: bool,
                       spatial_scale: float, box_mode: str, mode: str, pad_value) -> torch.Tensor:
    """Crops box n of `boxes` [N, 4] out of image n of `images` [N, ..., H, W] and resizes it
    bilinearly to (th, tw). Samples falling outside the image take `pad_value`."""
    h, w = images.shape[-2:]
    box = corners(boxes, box_mode) * float(spatial_scale)
    if normalized:
        box = box * torch.tensor([h - 1, w - 1, h - 1, w - 1], dtype=torch.float64)
    outs = []
    for img, (h0, w0, h1, w1) in zip(images, box.tolist()):
        ys, xs = _box_positions(h0, h1, th, mode), _box_positions(w0, w1, tw, mode)
        rows = lerp_axis(img, img.dim() - 2, ys.clamp(0, h - 1))
        vals = lerp_axis(rows, img.dim() - 1, xs.clamp(0, w - 1))
        inside = ((ys >= 0) & (ys <= h - 1))[:, None] & ((xs >= 0) & (xs <= w - 1))[None, :]
        outs.append(torch.where(inside, vals, torch.tensor(pad_value, dtype=vals.dtype)))
    if not outs:
        return images.new_zeros((0,) + tuple(images.shape[1:-2]) + (th, tw))
    return torch.stack(outs)


def validate_crop_resize(ctx):
    need_rank(ctx, "x", 4, exact=True)
    need_choice(ctx, "box_coordinate_mode", BOX_MODES)
    need_choice(ctx, "sampling_mode", SAMPLING_MODES)


def _infer_crop_resize(ctx):
    validate_crop_resize(ctx)
    need_rank(ctx, "roi", 5, exact=True)
    n, _, k = ctx.shape("roi")[:3]
    if isinstance(k, int) and k not in (4, 5):
        raise ctx.error(f"input 'roi' must hold 4 or 5 values per box (axis 2), got {ctx.shape('roi')}")
    b, c = ctx.shape("x")[:2]
    # With a leading batch index (5 values) each box crops one image; otherwise every image.
    return TensorType(ctx.dtype("x"), (n, 1 if k == 5 else b, c,
                                       int(ctx.param("target_height")), int(ctx.param("target_width"))))


CROP_RESIZE_COMMON = [
    In("target_height", (dt.int32,), const=True, optional=True, default=1, param=True),
    In("target_width", (dt.int32,), const=True, optional=True, default=1, param=True),
    In("normalized_coordinates", (dt.bool_,), const=True, optional=True, default=False, param=True),
    In("spatial_scale", (dt.fp32,), const=True, optional=True, default=1.0, param=True),
    In("box_coordinate_mode", (dt.string,), const=True, optional=True, default="CORNERS_HEIGHT_FIRST",
       param=True),
    In("sampling_mode", (dt.string,), const=True, optional=True, default="DEFAULT", param=True)]
PAD_VALUE = In("pad_value", "T", const=True, optional=True, default=0.0, param=True)


def _crop_resize_roi(x, roi, target_height, target_width, normalized_coordinates, spatial_scale,
                     box_coordinate_mode, sampling_mode, pad_value):
    rows = roi.reshape(roi.shape[0], -1)
    args = (target_height, target_width, normalized_coordinates, spatial_scale, box_coordinate_mode,
            sampling_mode, pad_value)
    if rows.shape[1] == 5:
        images = x[rows[:, 0].round().long()][:, None]          # [N, 1, C, H, W]
        return crop_resize_images(images, rows[:, 1:], *args)
    images = x[None].expand(rows.shape[0], *x.shape)            # [N, B, C, H, W]
    return crop_resize_images(images, rows, *args)


@mil_op("crop_resize", domains={"T": FLOATS}, infer=_infer_crop_resize,
        inputs=[In("x", "T"), In("roi", "T"), *CROP_RESIZE_COMMON])
def crop_resize(x, roi, target_height, target_width, normalized_coordinates, spatial_scale,
                box_coordinate_mode, sampling_mode):
    """Crops boxes out of x [B, C, H, W] and resizes each bilinearly to (target_height, target_width).
    roi [N, 1, 4 or 5, 1, 1]: 4 box values crop every image (output [N, B, C, th, tw]); 5 values
    start with the image index (output [N, 1, C, th, tw]). Box values follow `box_coordinate_mode`;
    with `normalized_coordinates` they are fractions of (H - 1, W - 1); all are multiplied by
    `spatial_scale`. Samples outside the image are 0."""
    return _crop_resize_roi(x, roi, target_height, target_width, normalized_coordinates,
                            spatial_scale, box_coordinate_mode, sampling_mode, 0.0)


@mil_op("crop_resize", since=Target.iOS16, domains={"T": FLOATS}, infer=_infer_crop_resize,
        inputs=[In("x", "T"), In("roi", "T"), *CROP_RESIZE_COMMON, PAD_VALUE])
def crop_resize_ios16(x, roi, target_height, target_width, normalized_coordinates, spatial_scale,
                      box_coordinate_mode, sampling_mode, pad_value):
    """As iOS15 `crop_resize`; samples outside the image take `pad_value`."""
    return _crop_resize_roi(x, roi, target_height, target_width, normalized_coordinates,
                            spatial_scale, box_coordinate_mode, sampling_mode, pad_value)


# -- resample and affine ----------------------------------------------------------------------------
def _pad_index(i: torch.Tensor, n: int, padding_mode: str):
    """Maps integer positions onto [0, n) as the padding mode extends the image; also returns which
    positions are inside (only `constant` mode has outside positions)."""
    inside = (i >= 0) & (i < n)
    if padding_mode == "constant" or padding_mode == "border":
        return i.clamp(0, n - 1), inside if padding_mode == "constant" else torch.ones_like(inside)
    if padding_mode == "reflection":  # mirror about the edge samples: |1 2 3| -> 3 2 |1 2 3| 2 1
        if n == 1:
            return torch.zeros_like(i), torch.ones_like(inside)
        m = i.remainder(2 * (n - 1))
        return torch.where(m >= n, 2 * (n - 1) - m, m), torch.ones_like(inside)
    m = i.remainder(2 * n)  # symmetric: mirror including the edge: |1 2 3| -> 2 1 |1 2 3| 3 2
    return torch.where(m >= n, 2 * n - 1 - m, m), torch.ones_like(inside)


def _to_pixels(c: torch.Tensor, n: int, coordinates_mode: str, align_corners: bool) -> torch.Tensor:
    if coordinates_mode == "unnormalized":
        return c
    if coordinates_mode == "normalized_minus_one_to_one":
        return (c + 1) / 2 * (n - 1) if align_corners else ((c + 1) * n - 1) / 2
    return c * (n - 1) if align_corners else c * n - 0.5  # normalized_zero_to_one


def sample_2d(x, px, py, sampling_mode, padding_mode, padding_value):
    """Samples x [B, C, H, W] at pixel positions px, py [B, Ho, Wo] -> [B, C, Ho, Wo]."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    pad = torch.tensor(float(padding_value), dtype=x.dtype)

    def gather(iy, ix):
        yy, y_in = _pad_index(iy, h, padding_mode)
        xx, x_in = _pad_index(ix, w, padding_mode)
        idx = (yy * w + xx).reshape(b, 1, -1).expand(b, c, -1)
        vals = flat.gather(2, idx).reshape(b, c, *iy.shape[1:])
        return torch.where((y_in & x_in)[:, None], vals, pad)

    if sampling_mode == "nearest":  # round half up
        return gather(torch.floor(py + 0.5).long(), torch.floor(px + 0.5).long())
    y0, x0 = torch.floor(py), torch.floor(px)
    wy, wx = (py - y0).to(x.dtype)[:, None], (px - x0).to(x.dtype)[:, None]
    y0, x0 = y0.long(), x0.long()
    top = gather(y0, x0) * (1 - wx) + gather(y0, x0 + 1) * wx
    bottom = gather(y0 + 1, x0) * (1 - wx) + gather(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


_SAMPLING = ("bilinear", "nearest")
_PADDING = ("constant", "border", "reflection", "symmetric")
_COORDS = ("unnormalized", "normalized_minus_one_to_one", "normalized_zero_to_one")


def infer_resample(ctx):
    need_rank(ctx, "x", 4, exact=True)
    need_rank(ctx, "coordinates", 4, exact=True)
    for name, choices in (("sampling_mode", _SAMPLING), ("padding_mode", _PADDING),
                          ("coordinates_mode", _COORDS)):
        need_choice(ctx, name, choices, fold_case=True)
    xs, cs = ctx.shape("x"), ctx.shape("coordinates")
    if isinstance(xs[0], int) and isinstance(cs[0], int) and xs[0] != cs[0]:
        raise ctx.error(f"inputs 'x' and 'coordinates' disagree on the batch size: {xs[0]} vs {cs[0]}")
    if isinstance(cs[-1], int) and cs[-1] != 2:
        raise ctx.error(f"input 'coordinates' must end in a dimension of 2 (x, y), got {cs}")
    return TensorType(ctx.dtype("x"), (xs[0], xs[1], cs[1], cs[2]))


RESAMPLE_PARAMS = [
    In("sampling_mode", (dt.string,), const=True, param=True),
    In("padding_mode", (dt.string,), const=True, param=True),
    In("padding_value", "T", const=True, param=True),
    In("coordinates_mode", (dt.string,), const=True, param=True),
    In("align_corners", (dt.bool_,), const=True, param=True)]


def resample_kernel(x, coordinates, sampling_mode, padding_mode, padding_value, coordinates_mode,
                    align_corners):
    """Samples each image of x [B, C, H1, W1] at coordinates [B, H2, W2, 2] given as (x, y), i.e.
    (width, height), in `coordinates_mode` (`unnormalized` pixels; `normalized_minus_one_to_one` or
    `normalized_zero_to_one`, where `align_corners` puts the extremes on the centres of the corner
    pixels rather than their outer edges). `sampling_mode` is `bilinear` or `nearest`; positions off
    the image read the image extended by `padding_mode`: `constant` (padding_value), `border`
    (edge value), `reflection` (mirror without repeating the edge) or `symmetric` (mirror with it)."""
    h, w = x.shape[-2:]
    c = coordinates.to(torch.float64)
    mode = coordinates_mode.lower()
    px = _to_pixels(c[..., 0], w, mode, align_corners)
    py = _to_pixels(c[..., 1], h, mode, align_corners)
    return sample_2d(x, px, py, sampling_mode.lower(), padding_mode.lower(), padding_value)


RESAMPLE_INPUTS = [In("x", "T"), In("coordinates", "U"), *RESAMPLE_PARAMS]
# iOS16 adds fp16 coordinates (and iOS17 8/16-bit integers, see image_resizing_ios17.py).
mil_op("resample", domains={"T": FLOATS, "U": (dt.int32, dt.fp32)}, infer=infer_resample,
       inputs=RESAMPLE_INPUTS)(resample_kernel)
mil_op("resample", since=Target.iOS16, domains={"T": FLOATS, "U": (dt.int32, dt.fp16, dt.fp32)},
       infer=infer_resample, inputs=RESAMPLE_INPUTS)(resample_kernel)


def _infer_affine(ctx):
    need_rank(ctx, "x", 4, exact=True)
    need_rank(ctx, "transform_matrix", 2, exact=True)
    if ctx.param("sampling_mode").lower() != "bilinear":
        raise ctx.error(f"input 'sampling_mode' supports only 'bilinear', got {ctx.param('sampling_mode')!r}")
    if ctx.param("coordinates_mode").lower() != "normalized_minus_one_to_one":
        raise ctx.error("input 'coordinates_mode' supports only 'normalized_minus_one_to_one', got "
                        f"{ctx.param('coordinates_mode')!r}")
    if ctx.param("padding_mode").lower() != "constant" or ctx.param("padding_value") != 0:
        raise ctx.error("inputs 'padding_mode' / 'padding_value' support only 'constant' with 0")
    k = ctx.shape("transform_matrix")[-1]
    if isinstance(k, int) and k != 6:
        raise ctx.error(f"input 'transform_matrix' must have 6 columns [a0 a1 a2 b0 b1 b2], got {k}")
    b, c = ctx.shape("x")[:2]
    return TensorType(ctx.dtype("x"), (b, c, int(ctx.param("output_height")),
                                       int(ctx.param("output_width"))))


def _norm_axis(n: int) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(n, dtype=torch.float64)


@mil_op("affine", domains={"T": FLOATS}, infer=_infer_affine, inputs=[
    In("x", "T"), In("transform_matrix", "T"),
    In("output_height", (dt.int32,), const=True, param=True),
    In("output_width", (dt.int32,), const=True, param=True),
    *RESAMPLE_PARAMS])
def affine(x, transform_matrix, output_height, output_width, sampling_mode, padding_mode,
           padding_value, coordinates_mode, align_corners):
    """Affine warp of x [B, C, H, W]: output pixel (x, y), in normalized [-1, 1] coordinates, reads the
    input at x' = a0*x + a1*y + a2, y' = b0*x + b1*y + b2 (bilinear, zero outside). transform_matrix is
    [B or 1, 6] = [a0, a1, a2, b0, b1, b2]."""
    m = transform_matrix.to(torch.float64).reshape(-1, 6)
    m = m.expand(x.shape[0], 6) if m.shape[0] == 1 else m
    gy, gx = torch.meshgrid(_norm_axis(output_height), _norm_axis(output_width), indexing="ij")
    a = [m[:, k, None, None] for k in range(6)]
    coords = torch.stack([a[0] * gx + a[1] * gy + a[2], a[3] * gx + a[4] * gy + a[5]], dim=-1)
    return resample_kernel(x, coords, sampling_mode, padding_mode, padding_value, coordinates_mode,
                           align_corners)

