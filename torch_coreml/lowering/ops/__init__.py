"""aten → MIL lowerings, one module per op family; importing this package registers them all."""

import importlib

_FAMILIES = [
    "elementwise",
]

for _name in _FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")
