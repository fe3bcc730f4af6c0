"""The public conversion entry points: `export` and `analyze`.

export: capture → decompose → lower → optimize → verify → save the package → wrap it as a module.
The package is written to a private temporary directory and the returned module runs from it, so what
a user calls is exactly the artifact `save` writes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from .coreml_program import CoreMLProgram
from .errors import ConversionError
from .format.description import ModelInterface
from .lowering.exported import LoweredProgram, capture, lower_exported
from .options import ConversionOptions
from .progress import conversion, phase
from .pipeline import INPUT_DTYPES_KEY, model_interface, save_lowered  # noqa: F401  (key re-exported)

log = logging.getLogger(__name__)


def export(obj: Any, example_inputs: Any = None, *, dynamic_shapes: Any = None, **options: Any) -> CoreMLProgram:
    """Convert an `ExportedProgram` (or an `nn.Module` with example inputs) into a Core ML program.

    Options: compute_precision ("float16" default, "float32"), minimum_deployment_target ("iOS15" …
    "iOS18", or the macOS/tvOS/watchOS release of the same year), inputs / outputs (names),
    author, license, version, description, user_defined (metadata), runtime, compute_units.
    """
    opts = ConversionOptions.make(**options)
    # Phases (capture here; decompose, lower, optimize, write weights inside) show after 2 s.
    with conversion("torch_coreml.export"):
        with phase("capture"):
            ep = capture(obj, example_inputs, dynamic_shapes)
        lowered = lower_exported(ep, target=opts.target, float_dtype=opts.float_dtype,
                                 input_names=opts.input_names, output_names=opts.output_names)
        _check_names(opts, lowered)
        path = _private_package_path()
        # The same passes → verify → save tail as the torch.compile backend's partitions (pipeline.py).
        save_lowered(lowered.lowered, path, opts, in_spec=lowered.in_spec, out_spec=lowered.out_spec,
                     input_mutations=lowered.input_mutations)
    try:
        module = CoreMLProgram(path, executor=_executor_name(opts), eager=ep.module,
                               compute_units=opts.compute_units)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)  # e.g. runtime="coreml" off macOS: leave nothing behind
        raise
    weakref.finalize(module, shutil.rmtree, str(path.parent), True)
    return module


def _check_names(opts: ConversionOptions, lowered: LoweredProgram) -> None:
    # The new values of inputs the model mutates are extra program outputs, named after their inputs.
    outputs = len(lowered.lowered.outputs) - len(lowered.input_mutations)
    for kind, given, actual in (("input", opts.input_names, len(lowered.lowered.inputs)),
                                ("output", opts.output_names, outputs)):
        if given and len(given) != actual:
            raise ConversionError(f"{len(given)} {kind} name(s) given {list(given)}, but the model has "
                                  f"{actual} tensor {kind}(s)")


def _executor_name(opts: ConversionOptions) -> str:
    # The request itself, not the resolved name: the module resolves it with `select_executor` ("auto"
    # -> Core ML on macOS when it works) and keeps "auto" when pickled, to resolve again where unpickled.
    return opts.runtime


def _private_package_path() -> Path:
    return Path(tempfile.mkdtemp(prefix="torch_coreml_")) / "model.mlpackage"


def _interface(lowered: LoweredProgram, opts: ConversionOptions) -> ModelInterface:
    return model_interface(lowered.lowered, opts, in_spec=lowered.in_spec, out_spec=lowered.out_spec,
                           input_mutations=lowered.input_mutations)


def analyze(obj: Any, example_inputs: Any = None, **options: Any):
    """A coverage report (supported %, histogram by op) without converting; see `CoverageReport`."""
    from .analysis import analyze_program

    opts = ConversionOptions.make(**options)
    return analyze_program(capture(obj, example_inputs), opts)
