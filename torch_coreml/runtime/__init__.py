"""Running converted models: `CoreMLModule` and the executors behind it."""

from __future__ import annotations

import os

from .executor import Executor, make_executor, register_executor  # noqa: F401
from .module import CoreMLModule


def load(path: str | os.PathLike, executor: str = "reference") -> CoreMLModule:
    """Load a `.mlpackage` as a torch module (the reference executor reads and runs the saved package)."""
    return CoreMLModule(path, executor=executor)


__all__ = ["CoreMLModule", "Executor", "load", "make_executor", "register_executor"]
