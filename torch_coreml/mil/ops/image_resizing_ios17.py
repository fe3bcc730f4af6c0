"""Image resizing ops new or changed in iOS17: `crop_resize` with separate boxes and box indices,
`resample` with 8/16-bit integer coordinates, and the general `resize`. Helpers and the sampling-mode
conventions are in `image_resizing.py`."""

from __future__ import annotations

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import Symbol, TensorType
from .image_resizing import (
    CROP_RESIZE_COMMON, FLOATS, PAD_VALUE, RESAMPLE_INPUTS, SAMPLING_MODES, crop_resize_images,
    infer_resample, nearest_index, need_choice, resample_kernel, resize_axis_linear,
    validate_crop_resize,
)
from .spec import In, mil_op


# -- crop_resize ------------------------------------------------------------------------------------
def _infer_crop_resize(ctx):
    validate_crop_resize(ctx)
    boxes = ctx.type("boxes")
    if boxes.rank != 2 or (isinstance(boxes.shape[1], int) and boxes.shape[1] != 4):
        raise ctx.error(f"input 'boxes' must have shape [N, 4], got {boxes}")
    n, b = boxes.shape[0], ctx.shape("x")[0]
    if ctx.has("box_indices"):
        idx = ctx.type("box_indices")
        if idx.rank != 1 or (isinstance(idx.shape[0], int) and isinstance(n, int) and idx.shape[0] != n):
            raise ctx.error(f"input 'box_indices' must have shape [{n}], got {idx}")
        val = ctx.value("box_indices")
        if val is not None and isinstance(b, int) and np.any(np.asarray(val) >= b):
            raise ctx.error(f"input 'box_indices' {np.asarray(val).tolist()} points past the batch size {b}")
    elif isinstance(n, int) and isinstance(b, int) and n > b:
        raise ctx.error(f"without input 'box_indices' box i crops image i, but 'boxes' has {n} boxes "
                        f"for {b} images")
    if ctx.param("normalized_coordinates") and not boxes.dtype.is_float:
        raise ctx.error(f"input 'boxes' must be fp16 or fp32 with normalized_coordinates, got {boxes.dtype}")
    return TensorType(ctx.dtype("x"), (n, ctx.shape("x")[1], int(ctx.param("target_height")),
                                       int(ctx.param("target_width"))))


@mil_op("crop_resize", since=Target.iOS17, infer=_infer_crop_resize,
        domains={"T": FLOATS, "BOX_T": (dt.fp16, dt.fp32, dt.uint16), "BOX_INDEX_T": (dt.uint16, dt.int32)},
        inputs=[In("x", "T"), In("boxes", "BOX_T"), In("box_indices", "BOX_INDEX_T", optional=True),
                *CROP_RESIZE_COMMON, PAD_VALUE])
def crop_resize(x, boxes, box_indices, target_height, target_width, normalized_coordinates,
                spatial_scale, box_coordinate_mode, sampling_mode, pad_value):
    """Crops box i of boxes [N, 4] out of image box_indices[i] (default i) of x [B, C, H, W] and
    resizes it bilinearly to [C, target_height, target_width]; output [N, C, th, tw]. Box and
    sampling conventions as in iOS15 `crop_resize`; samples outside the image take `pad_value`."""
    idx = torch.arange(boxes.shape[0]) if box_indices is None else box_indices.long()
    return crop_resize_images(x[idx], boxes, target_height, target_width, normalized_coordinates,
                              spatial_scale, box_coordinate_mode, sampling_mode, pad_value)


# -- resample ---------------------------------------------------------------------------------------
mil_op("resample", since=Target.iOS17, infer=infer_resample, inputs=RESAMPLE_INPUTS, domains={
    "T": FLOATS, "U": (dt.int8, dt.uint8, dt.int16, dt.uint16, dt.int32, dt.fp16, dt.fp32)})(resample_kernel)


# -- resize -----------------------------------------------------------------------------------------
_INTERPOLATION = ("LINEAR", "NEAREST_NEIGHBOR")


def _infer_resize(ctx):
    need_choice(ctx, "interpolation_mode", _INTERPOLATION)
    need_choice(ctx, "sampling_mode", SAMPLING_MODES)
    if ctx.rank("shape") != 1:
        raise ctx.error(f"input 'shape' must be a vector, got {ctx.type('shape')}")
    k = int(ctx.param("resized_dims"))
    x_shape = list(ctx.shape("x"))
    rank = len(x_shape)
    n = ctx.shape("shape")[0]
    val = ctx.value("shape")
    if isinstance(n, int) and (k > n or n > rank):
        raise ctx.error(f"needs resized_dims ({k}) <= size of input 'shape' ({n}) <= rank of 'x' ({rank})")
    if k > rank:
        raise ctx.error(f"input 'resized_dims' ({k}) exceeds the rank of 'x' ({rank})")
    for i in range(k):
        axis = rank - k + i
        target = None if val is None else int(np.asarray(val).reshape(-1)[n - k + i])
        if target is None:
            x_shape[axis] = Symbol.fresh()
        elif target != 0:  # 0 keeps the input's size
            x_shape[axis] = target
    return TensorType(ctx.dtype("x"), tuple(x_shape))


@mil_op("resize", since=Target.iOS17, infer=_infer_resize,
        domains={"T": (dt.fp16, dt.fp32, dt.int32), "U": (dt.int32, dt.int16, dt.uint16, dt.uint32)},
        inputs=[In("x", "T"), In("shape", "U"),
                In("resized_dims", (dt.uint32,), const=True, param=True),
                In("interpolation_mode", (dt.string,), const=True, optional=True, default="LINEAR",
                   param=True),
                In("sampling_mode", (dt.string,), const=True, optional=True, default="DEFAULT",
                   param=True)])
def resize(x, shape, resized_dims, interpolation_mode, sampling_mode):
    """Resizes the last `resized_dims` axes of x to the last `resized_dims` entries of the runtime
    vector `shape` (an entry 0 keeps that axis). LINEAR interpolates (multi-)linearly with positions
    from `sampling_mode` (see `resize_bilinear`); NEAREST_NEIGHBOR copies input sample
    floor((i + 0.5) * in_size / out_size)."""
    sizes = [int(v) for v in shape.reshape(-1).tolist()]
    rank, k = x.dim(), int(resized_dims)
    out = x
    for i in range(k):
        axis, target = rank - k + i, sizes[len(sizes) - k + i]
        n = x.shape[axis]
        if target == 0:
            continue
        if interpolation_mode == "LINEAR":
            out = resize_axis_linear(out, axis, target, sampling_mode)
        else:
            out = out.index_select(axis, nearest_index(n, target, True))
    return out
