"""Running converted models: `CoreMLModule` and the executors behind it."""

from __future__ import annotations

import os

from .executor import Executor, make_executor, register_executor, select_executor  # noqa: F401
from .module import CoreMLModule


def load(path: str | os.PathLike, runtime: str = "auto", compute_units: str = "all", *,
         executor: str | None = None) -> CoreMLModule:
    """Load a `.mlpackage` as a torch module.

    runtime: "auto" (Core ML on macOS when it works, else the reference runtime; the log says which),
    "coreml" (raises RuntimeUnavailableError where Core ML cannot run) or "reference". `executor=` is
    the older name of `runtime=`. compute_units ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne") tells
    Core ML where it may run; the reference runtime always runs on the CPU.
    """
    if executor is not None:
        if runtime not in ("auto", executor):
            raise ValueError(f"runtime={runtime!r} and executor={executor!r} disagree; pass only runtime=")
        runtime = executor
    return CoreMLModule(path, executor=runtime, compute_units=compute_units)


__all__ = ["CoreMLModule", "Executor", "load", "make_executor", "register_executor", "select_executor"]
