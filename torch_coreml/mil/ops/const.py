"""`const`: a compile-time value. It has no inputs; its value lives in the op's `val` attribute.

The Builder and the serializer treat it specially; this entry exists so the catalogue lists every op
and the runtime has one place that turns a stored value into a runtime value.
"""

from __future__ import annotations

from .. import dtypes as dt
from .spec import mil_op


def _const_type(ctx):
    raise ctx.error("const ops are created with Builder.const, not Builder.op")


@mil_op("const", inputs=[], infer=_const_type)
def const(ctx=None):
    """Never called through the generic path: see `const_to_runtime`."""
    raise NotImplementedError("const values are materialized by const_to_runtime")


def const_to_runtime(value, mil_type):
    """The runtime value of a stored const: a torch tensor, or a str for string scalars."""
    if mil_type.dtype is dt.string:
        return value if isinstance(value, str) else value.tolist()
    return dt.numpy_to_torch(value, mil_type.dtype)
