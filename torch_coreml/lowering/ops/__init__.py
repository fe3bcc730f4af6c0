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
    "composite",
    "special_gamma",
    "special_bessel",
    "special_polynomials",
    "scan",
    "linalg",
    "selection",
    "sampling",
    "random",
    "data_dependent",
    "recurrent",
    "bits",
]

for _name in _FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")
