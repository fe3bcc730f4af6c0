"""aten → MIL lowerings, one module per op family; importing this package registers them all."""

import importlib

_FAMILIES = [
    "elementwise",
    "unary",
    "activation",
    "conversion",
    "shape",
    "padding",
    "indexing",
    "creation",
    "symbolic",
    "linear",
    "conv",
    "pool",
    "norm",
    "reduction",
    "attention",
    "embedding",
    "resize",
    "sort",
    "control_flow",
]

for _name in _FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")
