"""Embedding lookup: aten.embedding is a gather of weight rows."""

from __future__ import annotations

import torch

from ...mil import dtypes as dt
from ..registry import lowering

aten = torch.ops.aten


@lowering(aten.embedding.default)
def embedding(ctx, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """embedding(Tensor weight, Tensor indices, SymInt padding_idx=-1, bool scale_grad_by_freq=False,
    bool sparse=False) -> Tensor

    padding_idx, scale_grad_by_freq and sparse only affect the gradient."""
    if not indices.dtype.is_int:
        raise ctx.unsupported(f"embedding indices of dtype {indices.dtype}")
    return ctx.b.op("gather", x=weight, indices=ctx.cast(indices, dt.int32), axis=0)
