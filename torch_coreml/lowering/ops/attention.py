"""Attention: aten.scaled_dot_product_attention onto the iOS18 MIL op of the same name.

Kept whole only where MIL computes exactly what torch does: iOS18+, no dropout, no grouped-query
broadcasting, a bool or float mask (or is_causal with static sizes). Everything else is refused, so
torch's decomposition (matmul, softmax, ...) is used instead.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.targets import Target
from ..registry import lowering
from ._nn_helpers import rank

aten = torch.ops.aten


@lowering(aten.scaled_dot_product_attention.default)
def scaled_dot_product_attention(ctx, query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None,
    float dropout_p=0.0, bool is_causal=False, *, float? scale=None, bool enable_gqa=False) -> Tensor"""
    if ctx.target < Target.iOS18:
        raise ctx.unsupported("MIL scaled_dot_product_attention needs iOS18")
    if dropout_p:
        raise ctx.unsupported("attention dropout")
    if enable_gqa:
        raise ctx.unsupported("grouped-query attention (enable_gqa)")
    if not rank(query) == rank(key) == rank(value) >= 3:
        raise ctx.unsupported("attention inputs must share one rank >= 3")
    q, k, v = ctx.promote(query, key, value, dtype=ctx.float_dtype)
    if scale is not None:
        # MIL always divides by sqrt(E); fold torch's explicit scale into the query instead.
        embed = q.shape[-1]
        if not isinstance(embed, int):
            raise ctx.unsupported("an explicit attention scale with a dynamic embedding size")
        q = ctx.b.op("mul", x=q, y=ctx.const(scale * math.sqrt(embed), q.dtype))
    mask = attn_mask
    if is_causal:
        if mask is not None:
            raise ctx.unsupported("is_causal together with attn_mask")
        length, source = q.shape[-2], k.shape[-2]
        if not (isinstance(length, int) and isinstance(source, int)):
            raise ctx.unsupported("is_causal with dynamic sequence lengths")
        mask = ctx.const(np.tril(np.ones((length, source), dtype=bool)), dt.bool_)
    elif mask is not None and mask.dtype is not dt.bool_:
        mask = ctx.cast(mask, q.dtype)
    return ctx.b.op("scaled_dot_product_attention", query=q, key=k, value=v, attn_mask=mask)
