"""Conversion options shared by `export`, the TorchScript path and the torch.compile backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .mil import dtypes as dt
from .mil.targets import Target, parse_target

_PRECISIONS = {"float16": dt.fp16, "fp16": dt.fp16, "float32": dt.fp32, "fp32": dt.fp32}
COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")
RUNTIMES = ("auto", "reference", "coreml")


@dataclass(frozen=True)
class ConversionOptions:
    compute_precision: str = "float16"
    minimum_deployment_target: Target = Target.iOS16
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    author: str = ""
    license: str = ""
    version: str = ""
    description: str = ""
    user_defined: dict = field(default_factory=dict)
    runtime: str = "auto"
    compute_units: str = "all"

    @property
    def float_dtype(self) -> dt.DType:
        return _PRECISIONS[self.compute_precision]

    @property
    def target(self) -> Target:
        return self.minimum_deployment_target

    @staticmethod
    def make(compute_precision: str = "float16", minimum_deployment_target: Any = "iOS16",
             inputs: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
             author: str = "", license: str = "", version: str = "", description: str = "",
             user_defined: dict | None = None, runtime: str = "auto",
             compute_units: str = "all") -> "ConversionOptions":
        """Validate user-facing option values; every bad value gets a message listing the good ones."""
        if compute_precision not in _PRECISIONS:
            raise ValueError(f"compute_precision must be 'float16' or 'float32', got {compute_precision!r}")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        if compute_units not in COMPUTE_UNITS:
            raise ValueError(f"compute_units must be one of {COMPUTE_UNITS}, got {compute_units!r}")
        precision = "float16" if _PRECISIONS[compute_precision] is dt.fp16 else "float32"
        return ConversionOptions(
            compute_precision=precision,
            minimum_deployment_target=parse_target(minimum_deployment_target),
            input_names=tuple(inputs or ()), output_names=tuple(outputs or ()),
            author=author, license=license, version=version, description=description,
            user_defined=dict(user_defined or {}), runtime=runtime, compute_units=compute_units)
