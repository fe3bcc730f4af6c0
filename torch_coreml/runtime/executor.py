"""The seam between `CoreMLModule` and whatever runs a package.

An executor is built from a package path and maps named input tensors to named output tensors:

    executor = make_executor("reference", "model.mlpackage")
    outputs = executor.run({"x": x})        # dict name -> torch.Tensor, in interface output order

Two executors exist: "reference" (catalogue kernels, any platform) and "coreml" (Core ML through
coremltools, macOS only). `select_executor` turns a runtime option ("auto" | "reference" | "coreml")
into an executor name: "auto" takes Core ML where it works and says so in the log; "coreml" where it
does not raises instead of quietly running something else.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping, Protocol

import torch

from ..errors import RuntimeUnavailableError
from ..format.description import ModelInterface
from ..mil.program import Program

logger = logging.getLogger(__name__)


class Executor(Protocol):
    name: str
    program: Program
    interface: ModelInterface

    def run(self, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        ...

    def reset_states(self) -> None:
        ...


# A factory takes the package path and the compute units ("all", "cpu_only", ...); executors that do
# not choose a device (the reference one runs on the CPU) ignore the latter.
Factory = Callable[[str | os.PathLike, str], Executor]
_FACTORIES: dict[str, Factory] = {}


def register_executor(name: str, factory: Factory) -> None:
    if name in _FACTORIES:
        raise ValueError(f"an executor named {name!r} is already registered")
    _FACTORIES[name] = factory


def make_executor(name: str, package_path: str | os.PathLike, compute_units: str = "all") -> Executor:
    from . import coreml, reference  # noqa: F401 - register themselves; imported late to keep this module light

    if compute_units not in coreml.COMPUTE_UNITS:
        # Checked for every executor: a typo must not pass unnoticed just because this run is on Linux.
        raise ValueError(f"compute_units must be one of {tuple(coreml.COMPUTE_UNITS)}, got {compute_units!r}")
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown executor {name!r}; available: {sorted(_FACTORIES)}") from None
    return factory(package_path, compute_units)


RUNTIME_ENV = "TORCH_COREML_RUNTIME"


def select_executor(runtime: str) -> str:
    """The executor to run with for a runtime option; raises RuntimeUnavailableError for an impossible one.

    TORCH_COREML_RUNTIME=reference|coreml decides what "auto" means (the test-suite pins "reference" so
    that a Mac runs the same assertions as Linux). Other registered executor names pass through.
    """
    pinned = os.environ.get(RUNTIME_ENV, "auto")
    if runtime == "auto" and pinned != "auto":
        if pinned not in ("reference", "coreml"):
            raise ValueError(f"{RUNTIME_ENV} must be 'auto', 'reference' or 'coreml', got {pinned!r}")
        logger.info("runtime='auto': %s=%s picks the %s executor", RUNTIME_ENV, pinned, pinned)
        runtime = pinned
    if runtime not in ("auto", "coreml"):
        return runtime
    from .coreml import unavailable_reason

    reason = unavailable_reason()
    if runtime == "coreml":
        if reason is not None:
            raise RuntimeUnavailableError(f"runtime='coreml' needs Core ML, which cannot run here: {reason}. "
                                          "Use runtime='reference' (or 'auto') to run the package with "
                                          "torch_coreml's reference runtime instead.")
        return "coreml"
    chosen = "reference" if reason is not None else "coreml"
    logger.info("runtime='auto': running with the %s executor%s", chosen,
                f" ({reason})" if reason is not None else " (Core ML is available)")
    return chosen
