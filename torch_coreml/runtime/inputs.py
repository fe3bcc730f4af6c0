"""Checking and converting the inputs a caller hands to a converted model.

Conversion rules, by the declared feature dtype:
- fp32 / fp16 features take any floating torch dtype (fp16, bf16, fp32, fp64), converted to the
  declared one, the way Core ML converts an MLMultiArray of another float type. Integers and bools
  are refused: a float model fed integer data is far more often a mistake than an intention.
- int32 / int8 features take any integer dtype (and uint8) whose values fit the declared type;
  values that do not fit are refused rather than wrapped. Floats and bools are refused.
numpy arrays and python numbers are accepted as if they were the equivalent torch tensors.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ..errors import RuntimeInputError
from ..format.description import Feature, ModelInterface

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTS = (torch.bool, torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


def check_inputs(interface: ModelInterface, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The inputs as tensors of the declared dtypes, in interface order; raises RuntimeInputError."""
    expected = [f.name for f in interface.inputs]
    unknown = [name for name in inputs if name not in expected]
    if unknown:
        raise RuntimeInputError(f"unknown input(s) {unknown}; the model's inputs are {expected}")
    missing = [name for name in expected if name not in inputs]
    if missing:
        raise RuntimeInputError(f"missing input(s) {missing}; the model's inputs are {expected}")
    return {f.name: convert_input(f, inputs[f.name]) for f in interface.inputs}


def convert_input(feature: Feature, value: Any) -> torch.Tensor:
    tensor = _as_tensor(feature, value)
    target = feature.dtype.torch
    if target.is_floating_point:
        if tensor.dtype not in _FLOATS:
            raise _error(feature, f"a floating-point tensor (converted to {feature.dtype})", f"dtype {tensor.dtype}")
    elif tensor.dtype not in _INTS:
        raise _error(feature, f"an integer tensor (converted to {feature.dtype})", f"dtype {tensor.dtype}")
    elif tensor.numel():
        info = torch.iinfo(target)
        low, high = int(tensor.min()), int(tensor.max())
        if low < info.min or high > info.max:
            raise _error(feature, f"values in the {feature.dtype} range [{info.min}, {info.max}]",
                         f"values in [{low}, {high}] ({tensor.dtype})")
    shape = tuple(tensor.shape)
    if not feature.allows(shape):
        raise _error(feature, f"shape {feature.shape_text()}", f"shape {list(shape)}")
    return tensor.detach().to(target).contiguous()


def _as_tensor(feature: Feature, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (bool, int, float, np.generic)):
        return torch.as_tensor(value)
    raise _error(feature, "a torch.Tensor", type(value).__name__)


def _error(feature: Feature, expected: str, got: str) -> RuntimeInputError:
    return RuntimeInputError(f"input {feature.name!r}: expected {expected}, got {got}")
