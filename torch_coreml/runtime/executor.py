"""The seam between `CoreMLModule` and whatever runs a package.

An executor is built from a package path and maps named input tensors to named output tensors:

    executor = make_executor("reference", "model.mlpackage")
    outputs = executor.run({"x": x})        # dict name -> torch.Tensor, in interface output order

The reference executor (catalogue kernels, any platform) is the only one today; a Core ML executor
(macOS) registers itself under another name.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Protocol

import torch

from ..format.description import ModelInterface
from ..mil.program import Program


class Executor(Protocol):
    name: str
    program: Program
    interface: ModelInterface

    def run(self, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        ...

    def reset_states(self) -> None:
        ...


_FACTORIES: dict[str, Callable[[str | os.PathLike], Executor]] = {}


def register_executor(name: str, factory: Callable[[str | os.PathLike], Executor]) -> None:
    if name in _FACTORIES:
        raise ValueError(f"an executor named {name!r} is already registered")
    _FACTORIES[name] = factory


def make_executor(name: str, package_path: str | os.PathLike) -> Executor:
    if name not in _FACTORIES and name == "reference":
        from . import reference  # noqa: F401 - registers itself
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown executor {name!r}; available: {sorted(_FACTORIES) or ['reference']}") from None
    return factory(package_path)
