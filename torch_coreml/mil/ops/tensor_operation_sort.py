"""MIL ordering and selection ops: argsort, topk (iOS15/16/17) and non_maximum_suppression (iOS15/17).

Ties are broken by position (a stable sort), so results are deterministic.
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .spec import In, mil_op
from .tensor_transformation import BOOL, I32, STR, axis_of, int_param

_T_NUM = (dt.fp16, dt.fp32, dt.int32)
_T_TOPK17 = (dt.fp16, dt.fp32, dt.int8, dt.int16, dt.int32, dt.uint8, dt.uint16)
_INDEX_DTYPES = {"int32": dt.int32, "uint16": dt.uint16}


def _argsort_type(ctx):
    axis_of(ctx, "axis", int_param(ctx, "axis"), ctx.rank("x"))
    return TensorType(dt.int32, ctx.shape("x"))


@mil_op("argsort", domains={"T": _T_NUM},
        inputs=[In("x", "T"), In("axis", I32, const=True, optional=True, param=True, default=-1),
                In("ascending", BOOL, const=True, optional=True, param=True, default=False)],
        infer=_argsort_type)
def argsort(x, axis, ascending):
    """Indices that sort x along `axis`, largest first unless `ascending`."""
    return torch.argsort(x, dim=axis, descending=not ascending, stable=True)


def _topk_type(ctx):
    shape = list(ctx.shape("x"))
    axis = axis_of(ctx, "axis", int_param(ctx, "axis"), len(shape))
    k = int_param(ctx, "k")
    all_allowed = ctx.spec.since >= Target.iOS17
    d = shape[axis]
    if k == -1 and all_allowed:
        k = d
    elif k < 0:
        raise ctx.error(f"input 'k' must be >= 0{' or -1 (all)' if all_allowed else ''}, got {k}")
    elif isinstance(d, int) and k > d:
        raise ctx.error(f"input 'k' ({k}) is larger than dim {axis} of x ({d})")
    shape[axis] = k
    values = TensorType(ctx.dtype("x"), tuple(shape))
    if not ctx.param("return_indices", True):
        if ctx.has("output_indices_dtype"):
            raise ctx.error("input 'output_indices_dtype' may only be set when return_indices is true")
        return [values]
    name = ctx.param("output_indices_dtype", "int32")
    if name not in _INDEX_DTYPES:
        raise ctx.error(f"input 'output_indices_dtype' must be one of {sorted(_INDEX_DTYPES)}, got {name!r}")
    return [values, TensorType(_INDEX_DTYPES[name], tuple(shape))]


_TOPK15 = [In("x", "T"), In("k", I32, const=True, optional=True, param=True, default=1),
           In("axis", I32, const=True, optional=True, param=True, default=-1),
           In("ascending", BOOL, const=True, optional=True, param=True, default=False)]
_TOPK16 = _TOPK15 + [In("sort", BOOL, const=True, optional=True, param=True, default=True),
                     In("return_indices", BOOL, const=True, optional=True, param=True, default=True)]
_TOPK17 = [In("x", "T"), In("k", "K", const=True, optional=True, param=True, default=1)] + _TOPK16[2:] + [
    In("output_indices_dtype", STR, const=True, optional=True, param=True, default="int32")]


@mil_op("topk", since=Target.iOS17, domains={"T": _T_TOPK17, "K": (dt.int8, dt.int16, dt.int32)},
        inputs=_TOPK17, infer=_topk_type)
@mil_op("topk", since=Target.iOS16, domains={"T": _T_NUM}, inputs=_TOPK16, infer=_topk_type)
@mil_op("topk", domains={"T": _T_NUM}, inputs=_TOPK15, infer=_topk_type)
def topk(x, k, axis, ascending, sort=True, return_indices=True, output_indices_dtype="int32"):
    """The k largest (smallest if `ascending`) values along `axis` and their indices, best first.
    iOS16 adds `sort` (results here are always sorted, which satisfies either setting) and
    `return_indices`; iOS17 adds k = -1 (everything) and the indices dtype (int32 or uint16)."""
    axis %= x.dim()
    k = x.shape[axis] if k == -1 else k
    order = torch.argsort(x, dim=axis, descending=not ascending, stable=True).narrow(axis, 0, k)
    values = torch.gather(x, axis, order)
    return (values, order) if return_indices else values


# -- non-maximum suppression -----------------------------------------------------------------------

def _nms_type(boxes_last: bool):
    def infer(ctx):
        for name in ("boxes", "scores"):
            if ctx.rank(name) != 3:
                raise ctx.error(f"input {name!r} must have rank 3, got {ctx.type(name)}")
        box_dim = ctx.shape("boxes")[1 if boxes_last else 2]
        if isinstance(box_dim, int) and box_dim != 4:
            raise ctx.error(f"input 'boxes' must hold 4 coordinates per box, got {ctx.type('boxes')}")
        for name in ("iou_threshold",) + (() if boxes_last else ("score_threshold",)):
            if ctx.shape(name):
                raise ctx.error(f"input {name!r} must be a scalar, got {ctx.type(name)}")
        m = int_param(ctx, "max_boxes")
        if m < 0:
            raise ctx.error(f"input 'max_boxes' must be >= 0, got {m}")
        n, a, b = ctx.shape("scores")
        dtype = ctx.dtype("boxes")
        if boxes_last:
            return [TensorType(dtype, (n, 4, m)), TensorType(dtype, (n, a, m)), TensorType(dt.int32, (n, m))]
        return [TensorType(dtype, (n, m, 4)), TensorType(dtype, (n, m, b)), TensorType(dt.int32, (n, m)),
                TensorType(dt.int32, (n,))]

    return infer


def _nms_one(boxes, scores, iou_threshold, score_threshold, max_boxes, per_class):
    """Selected box indices for one batch entry; boxes [B, 4] as (x_center, y_center, w, h), scores [B, K]."""
    best, cls = scores.max(dim=1)
    lo = boxes[:, :2] - boxes[:, 2:] / 2
    hi = boxes[:, :2] + boxes[:, 2:] / 2
    area = boxes[:, 2] * boxes[:, 3]
    keep: list[int] = []
    for i in torch.argsort(best, descending=True, stable=True).tolist():
        if len(keep) == max_boxes or best[i] < score_threshold:
            break
        if keep:
            k = torch.tensor(keep)
            wh = (torch.minimum(hi[k], hi[i]) - torch.maximum(lo[k], lo[i])).clamp(min=0)
            inter = wh[:, 0] * wh[:, 1]
            iou = inter / (area[k] + area[i] - inter)
            clash = iou > iou_threshold
            if per_class:
                clash &= cls[k] == cls[i]
            if bool(clash.any()):
                continue
        keep.append(i)
    return keep


def _nms(boxes, scores, iou_threshold, score_threshold, max_boxes, per_class):
    """Batched NMS on [n, B, 4] boxes and [n, B, K] scores; outputs padded with 0 (indices with -1)."""
    n, _, k = scores.shape
    out_boxes = torch.zeros(n, max_boxes, 4, dtype=boxes.dtype)
    out_scores = torch.zeros(n, max_boxes, k, dtype=scores.dtype)
    out_idx = torch.full((n, max_boxes), -1, dtype=torch.int32)
    counts = torch.zeros(n, dtype=torch.int32)
    b32, s32 = boxes.float(), scores.float()  # IoU arithmetic in fp32 even for fp16 inputs
    for j in range(n):
        keep = _nms_one(b32[j], s32[j], iou_threshold, score_threshold, max_boxes, per_class)
        sel = torch.tensor(keep, dtype=torch.long)
        out_boxes[j, :len(keep)] = boxes[j, sel]
        out_scores[j, :len(keep)] = scores[j, sel]
        out_idx[j, :len(keep)] = sel.to(torch.int32)
        counts[j] = len(keep)
    return out_boxes, out_scores, out_idx, counts


@mil_op("non_maximum_suppression", domains={"T": dt.FLOATS},
        inputs=[In("boxes", "T"), In("scores", "T"), In("iou_threshold", "T", const=True, param=True),
                In("score_threshold", "T", const=True, param=True), In("max_boxes", I32, const=True, param=True),
                In("per_class_suppression", BOOL, const=True, optional=True, param=True, default=False)],
        infer=_nms_type(boxes_last=False))
def non_maximum_suppression(boxes, scores, iou_threshold, score_threshold, max_boxes, per_class_suppression):
    """Greedy NMS per batch entry. boxes [n, B, 4] are (x_center, y_center, width, height); scores
    [n, B, K] hold per-class scores and a box ranks by its best class. Boxes scoring below
    score_threshold are dropped; a box is skipped when its IoU with an already selected box exceeds
    iou_threshold (only boxes of the same best class count with per_class_suppression). Returns the
    selected boxes [n, max_boxes, 4], their scores [n, max_boxes, K], indices [n, max_boxes] and the
    count per batch entry [n]; unused slots hold 0 (indices -1)."""
    return _nms(boxes, scores, iou_threshold, score_threshold, max_boxes, per_class_suppression)


@mil_op("non_maximum_suppression", since=Target.iOS17, domains={"T": dt.FLOATS},
        inputs=[In("boxes", "T"), In("scores", "T"), In("iou_threshold", "T", const=True, param=True),
                In("max_boxes", I32, const=True, param=True),
                In("per_class_suppression", BOOL, const=True, optional=True, param=True, default=False)],
        infer=_nms_type(boxes_last=True))
def non_maximum_suppression_ios17(boxes, scores, iou_threshold, max_boxes, per_class_suppression):
    """iOS17 NMS: as the iOS15 op without a score threshold, with boxes [n, 4, B] and scores [n, K, B]
    (boxes on the last dim). Returns boxes [n, 4, max_boxes], scores [n, K, max_boxes] and indices
    [n, max_boxes] (-1 in unused slots)."""
    out_boxes, out_scores, out_idx, _ = _nms(boxes.transpose(1, 2), scores.transpose(1, 2), iou_threshold,
                                             float("-inf"), max_boxes, per_class_suppression)
    return out_boxes.transpose(1, 2), out_scores.transpose(1, 2), out_idx
