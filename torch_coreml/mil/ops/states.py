"""State ops (iOS18): `read_state` and `write_state` on a model state, a tensor that persists across
predictions (e.g. a KV cache). A state is a function input of type `state<tensor<...>>`.

The runtime value of a state is a `StateCell`: a small mutable holder whose `.value` is the current
tensor. `write_state` replaces `.value`; `read_state` returns it (tensors are never changed in place by
kernels, so no copy is needed).
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import StateType, Symbol, TensorType
from .spec import STATE, In, mil_op


class StateCell:
    """The runtime value of a MIL state: `.value` holds the current tensor."""

    __slots__ = ("value",)

    def __init__(self, value: torch.Tensor):
        self.value = value

    def __repr__(self) -> str:
        return f"StateCell({self.value!r})"


def _wrapped(ctx) -> TensorType:
    t = ctx.type("input")
    if not isinstance(t, StateType) or not isinstance(t.wrapped, TensorType):
        raise ctx.error(f"input 'input' must be a state wrapping a tensor, got {t}")
    return t.wrapped


@mil_op("read_state", since=Target.iOS18, inputs=[In("input", STATE)], infer=_wrapped)
def read_state(input):
    """The current value of the state `input`."""
    return input.value


def _infer_write(ctx):
    slot, data = _wrapped(ctx), ctx.type("data")
    fits = (data.dtype is slot.dtype and data.rank == slot.rank
            and all(isinstance(s, Symbol) or d == s for d, s in zip(data.shape, slot.shape)))
    if not fits:
        raise ctx.error(f"input 'data' of type {data} does not match the state's type {slot}")
    return []


@mil_op("write_state", since=Target.iOS18, infer=_infer_write,
        domains={"T": (dt.fp16, dt.fp32, dt.int8, dt.int16, dt.int32, dt.uint8, dt.uint16, dt.bool_)},
        inputs=[In("input", STATE), In("data", "T")])
def write_state(input, data):
    """Stores `data` as the new value of the state `input`; no outputs."""
    input.value = data
    return ()
