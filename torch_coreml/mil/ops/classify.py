"""`classify`: turns a probability tensor into a classifier's two outputs, the top label and a
label -> probability dictionary. Its presence makes the model a classifier; its outputs feed nothing.

`classes` is a const 1-D tensor of strings or int64 labels. (coremltools declares it as a const MIL
list; our const values are tensors, so the labels are held as a vector. The serializer binds them as a
literal value on the op, as coremltools does.)

Runtime values: the label is a python `str` (string classes) or an int64 scalar tensor; the dictionary
is a python dict from label (`str` or `int`) to probability (`float`).
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..types import DictType, TensorType
from .spec import In, mil_op


def _infer_classify(ctx):
    classes = ctx.type("classes")
    if classes.rank != 1:
        raise ctx.error(f"input 'classes' must be a vector of labels, got {classes}")
    probs = ctx.type("probabilities")
    n = probs.numel()
    if n is not None and isinstance(classes.shape[0], int) and n != classes.shape[0]:
        raise ctx.error(f"input 'probabilities' has {n} elements but input 'classes' has "
                        f"{classes.shape[0]} labels")
    label = TensorType(classes.dtype, ())
    return label, DictType(label, TensorType(dt.fp64, ()))


@mil_op("classify", infer=_infer_classify, inputs=[
    In("probabilities", (dt.fp32,)),
    In("classes", (dt.string, dt.int64), const=True, param=True)])
def classify(probabilities, classes):
    """The label of the largest probability, and every label's probability (flattened row-major)."""
    flat = probabilities.reshape(-1)
    if flat.numel() != len(classes):
        raise ValueError(f"classify: {flat.numel()} probabilities for {len(classes)} classes")
    best = classes[int(torch.argmax(flat))]
    table = {c: float(p) for c, p in zip(classes, flat.tolist())}
    label = best if isinstance(best, str) else torch.tensor(best, dtype=torch.int64)
    return label, table
