"""Transformer building blocks (iOS18): `scaled_dot_product_attention`."""

from __future__ import annotations

import math

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType, broadcast_shapes, is_static_dim
from .spec import In, mil_op


def _differ(a, b) -> bool:
    return is_static_dim(a) and is_static_dim(b) and a != b


def _infer_sdpa(ctx):
    q, k, v = ctx.shape("query"), ctx.shape("key"), ctx.shape("value")
    if not len(q) == len(k) == len(v):
        raise ctx.error(f"inputs 'query', 'key', 'value' must share one rank, got shapes {q}, {k}, {v}")
    if len(q) < 3:
        raise ctx.error(f"input 'query' must have rank >= 3 ([B, *, L, E]), got shape {q}")
    for name, s in (("key", k), ("value", v)):
        if any(_differ(a, b) for a, b in zip(q[:-2], s[:-2])):
            raise ctx.error(f"input {name!r} batch dims {s[:-2]} differ from query's {q[:-2]}")
    if _differ(q[-1], k[-1]):
        raise ctx.error(f"inputs 'query' and 'key' must share the embedding size, got {q[-1]} and {k[-1]}")
    if _differ(k[-2], v[-2]):
        raise ctx.error(f"inputs 'key' and 'value' must share the sequence length, got {k[-2]} and {v[-2]}")
    if ctx.has("attn_mask"):
        m = ctx.shape("attn_mask")
        if not m or _differ(m[-1], k[-2]):
            raise ctx.error(f"input 'attn_mask' must end in the key sequence length {k[-2]}, got shape {m}")
        try:
            out = broadcast_shapes(q[:-1], m[:-1])
        except ValueError:
            raise ctx.error(f"input 'attn_mask' shape {m} does not broadcast to [*, L, S] of query "
                            f"{q} and key {k}") from None
        if len(out) != len(q) - 1 or any(_differ(a, b) for a, b in zip(out, q[:-1])):
            raise ctx.error(f"input 'attn_mask' shape {m} would enlarge the output beyond {q[:-1]}")
    return TensorType(ctx.dtype("query"), q[:-1] + v[-1:])


@mil_op("scaled_dot_product_attention", since=Target.iOS18,
        domains={"T": dt.FLOATS, "M": (dt.bool_, dt.fp16, dt.fp32)},
        inputs=[In("query", "T"), In("key", "T"), In("value", "T"), In("attn_mask", "M", optional=True)],
        infer=_infer_sdpa)
def scaled_dot_product_attention(query, key, value, attn_mask):
    """softmax(query @ key^T / sqrt(E) + mask) @ value over the last two dims, no dropout, no causal
    flag. A bool attn_mask marks the positions allowed to attend (False adds -inf); a float one is added
    to the scores. The mask broadcasts to [*, L, S]."""
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.shape[-1])
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.to(scores.dtype)
    return torch.matmul(torch.softmax(scores, dim=-1), value)
