"""The public conversion entry points: `export` and `analyze`.

export: capture → decompose → lower → optimize → verify → save the package → wrap it as a module.
The package is written to a private temporary directory and the returned module runs from it, so what
a user calls is exactly the artifact `save` writes.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from .coreml_program import CoreMLProgram
from .errors import ConversionError
from .format.description import Feature, Metadata, ModelInterface, Ranges
from .format.serialize import save_model
from .lowering.exported import LoweredProgram, capture, lower_exported
from .mil.passes import run_default_passes
from .mil.program import Program
from .mil.verify import verify_program
from .options import ConversionOptions
from .runtime.module import OUTPUT_DTYPES_KEY

log = logging.getLogger(__name__)

INPUT_DTYPES_KEY = "torch_coreml.input_dtypes"


def export(obj: Any, example_inputs: Any = None, *, dynamic_shapes: Any = None, **options: Any) -> CoreMLProgram:
    """Convert an `ExportedProgram` (or an `nn.Module` with example inputs) into a Core ML program.

    Options: compute_precision ("float16" default, "float32"), minimum_deployment_target ("iOS15" …
    "iOS18", or the macOS/tvOS/watchOS release of the same year), inputs / outputs (names),
    author, license, version, description, user_defined (metadata), runtime, compute_units.
    """
    opts = ConversionOptions.make(**options)
    ep = capture(obj, example_inputs, dynamic_shapes)
    lowered = lower_exported(ep, target=opts.target, float_dtype=opts.float_dtype,
                             input_names=opts.input_names, output_names=opts.output_names)
    _check_names(opts, lowered)
    program = Program()
    program.add(lowered.lowered.function)
    run_default_passes(program)
    verify_program(program)
    interface = _interface(lowered, opts)
    path = _private_package_path()
    save_model(path, program, interface)
    module = CoreMLProgram(path, executor=_executor_name(opts), eager=ep.module(), compute_units=opts.compute_units)
    weakref.finalize(module, shutil.rmtree, str(path.parent), True)
    return module


def _check_names(opts: ConversionOptions, lowered: LoweredProgram) -> None:
    for kind, given, actual in (("input", opts.input_names, lowered.lowered.inputs),
                                ("output", opts.output_names, lowered.lowered.outputs)):
        if given and len(given) != len(actual):
            raise ConversionError(f"{len(given)} {kind} name(s) given {list(given)}, but the model has "
                                  f"{len(actual)} tensor {kind}(s)")


def _executor_name(opts: ConversionOptions) -> str:
    # The request itself, not the resolved name: the module resolves it with `select_executor` ("auto"
    # -> Core ML on macOS when it works) and keeps "auto" when pickled, to resolve again where unpickled.
    return opts.runtime


def _private_package_path() -> Path:
    return Path(tempfile.mkdtemp(prefix="torch_coreml_")) / "model.mlpackage"


def _interface(lowered: LoweredProgram, opts: ConversionOptions) -> ModelInterface:
    fn = lowered.lowered.function
    inputs = []
    for info, var in zip(lowered.lowered.inputs, fn.inputs):
        flex = None
        if info.ranges:
            flex = Ranges(tuple(info.ranges.get(i, (d, d)) if isinstance(d, int) or i in info.ranges
                                else (1, None) for i, d in enumerate(var.type.shape)))
        inputs.append(Feature(var.name, var.type.dtype, var.type.shape, flex))
    outputs = [Feature(v.name, v.type.dtype, v.type.shape) for v in fn.block.outputs]
    user = dict(opts.user_defined)
    user[OUTPUT_DTYPES_KEY] = json.dumps([str(i.torch_dtype).replace("torch.", "")
                                          for i in lowered.lowered.outputs])
    user[INPUT_DTYPES_KEY] = json.dumps([str(i.torch_dtype).replace("torch.", "")
                                         for i in lowered.lowered.inputs])
    user["com.github.apple.coremltools.source"] = f"torch=={torch.__version__}"
    metadata = Metadata(author=opts.author, license=opts.license, version=opts.version,
                        short_description=opts.description, user_defined=user)
    return ModelInterface(inputs, outputs, metadata=metadata,
                          input_tree=pytree.treespec_dumps(lowered.in_spec),
                          output_tree=pytree.treespec_dumps(lowered.out_spec))


def analyze(obj: Any, example_inputs: Any = None, **options: Any):
    """A coverage report (supported %, histogram by op) without converting; see `CoverageReport`."""
    from .analysis import analyze_program

    opts = ConversionOptions.make(**options)
    return analyze_program(capture(obj, example_inputs), opts)
