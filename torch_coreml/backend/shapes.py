"""Ranges of the symbolic dims Dynamo introduced (dynamic=True / mark_dynamic), for flexible inputs.

A symbolic dim becomes a Core ML input range, so a new batch size runs the same package instead of
recompiling. Bounds come from the shape environment of the current trace; an unbounded dim gets
`max_dim`.
"""

from __future__ import annotations

import logging

import torch
from torch.utils._sympy.numbers import int_oo

log = logging.getLogger(__name__)


def symbol_ranges(max_dim: int) -> dict[str, tuple[int, int]]:
    context = torch._guards.TracingContext.try_get()
    shape_env = getattr(getattr(context, "fake_mode", None), "shape_env", None)
    if shape_env is None:
        return {}
    out = {}
    for sym, vr in shape_env.var_to_range.items():
        if not vr.is_int:
            continue
        lo = int(vr.lower) if _finite(vr.lower) else 1
        hi = int(vr.upper) if _finite(vr.upper) else max_dim
        out[str(sym)] = (max(lo, 1), max(hi, lo, 1))
    return out


def _finite(bound) -> bool:
    # int_oo claims is_finite, so compare by value (as lowering/exported.py does).
    return bool(bound.is_finite) and bound not in (int_oo, -int_oo)
