"""The MIL op catalogue: one module per op family, each registering its ops on import."""

import importlib

from .spec import CATALOGUE, In, OpContext, OpSpec, mil_op  # noqa: F401

# Families are imported for their registrations. A family module that is not written yet is simply
# absent from this list.
_FAMILIES = [
    "const",
    "elementwise_binary",
    "elementwise_unary",
    "activation",
    "linear",
    "conv",
    "pool",
    "normalization",
    "reduction",
    "transformers",
    "tensor_transformation",
    "tensor_transformation_slice",
    "tensor_operation",
    "tensor_operation_sort",
    "scatter_gather",
    "control_flow",
    "classify",
    "image_resizing",
    "image_resizing_ios17",
    "random",
    "recurrent",
    "constexpr",
    "quantization",
    "states",
]

for _name in _FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")
