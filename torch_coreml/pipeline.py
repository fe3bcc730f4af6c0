"""The shared tail of every entry point: a lowered MIL function → passes → verified → saved package.

`torch_coreml.export` (one function for a whole ExportedProgram) and the torch.compile backend (one
function per delegated partition) both end here, so a package from either path is built by the same
passes, described by the same interface rules and written by the same (atomic) package writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from . import treespec
from .format.description import Feature, Metadata, ModelInterface, Ranges
from .format.serialize import save_model
from .lowering.graph import LoweredFunction
from .mil.passes import run_default_passes
from .mil.program import Program
from .mil.verify import verify_program
from .options import ConversionOptions
from .progress import phase
from .runtime.module import INPUT_MUTATIONS_KEY, OUTPUT_DTYPES_KEY

INPUT_DTYPES_KEY = "torch_coreml.input_dtypes"


def save_lowered(lowered: LoweredFunction, path: Path, opts: ConversionOptions, *, in_spec: Any = None,
                 out_spec: Any = None, input_mutations: dict[int, int] | None = None) -> Path:
    """Optimize and verify the lowered function, then write it as the package at `path`.

    `input_mutations` (output index → input index) marks outputs that are new values of inputs the
    model mutates in place; the runtime module copies them back into the caller's tensors."""
    program = Program()
    program.add(lowered.function)
    with phase("optimize"):
        run_default_passes(program)
        verify_program(program)
    with phase("write weights"):
        save_model(path, program, model_interface(lowered, opts, in_spec=in_spec, out_spec=out_spec,
                                                  input_mutations=input_mutations))
    return path


def model_interface(lowered: LoweredFunction, opts: ConversionOptions, *, in_spec: Any = None,
                    out_spec: Any = None, input_mutations: dict[int, int] | None = None) -> ModelInterface:
    """Features (with flexible ranges for symbolic dims), metadata, and the pytree specs if given.

    Without specs the package takes positional tensors and returns one tensor or a tuple, which is what
    a torch.compile partition needs."""
    fn = lowered.function
    inputs = []
    for info, var in zip(lowered.inputs, fn.inputs):
        flex = None
        if info.ranges:
            flex = Ranges(tuple(info.ranges.get(i, (d, d)) if isinstance(d, int) or i in info.ranges
                                else (1, None) for i, d in enumerate(var.type.shape)))
        inputs.append(Feature(var.name, var.type.dtype, var.type.shape, flex))
    outputs = [Feature(v.name, v.type.dtype, v.type.shape) for v in fn.block.outputs]
    user = dict(opts.user_defined)
    user[OUTPUT_DTYPES_KEY] = json.dumps([_dtype_name(i.torch_dtype) for i in lowered.outputs])
    user[INPUT_DTYPES_KEY] = json.dumps([_dtype_name(i.torch_dtype) for i in lowered.inputs])
    if input_mutations:
        # By name, so the mapping survives in the package: output name → the input it writes back to.
        user[INPUT_MUTATIONS_KEY] = json.dumps({fn.block.outputs[o].name: fn.inputs[i].name
                                                for o, i in sorted(input_mutations.items())})
    user["com.github.apple.coremltools.source"] = f"torch=={torch.__version__}"
    metadata = Metadata(author=opts.author, license=opts.license, version=opts.version,
                        short_description=opts.description, user_defined=user)
    return ModelInterface(inputs, outputs, metadata=metadata,
                          input_tree=treespec.dumps(in_spec) if in_spec is not None else None,
                          output_tree=treespec.dumps(out_spec) if out_spec is not None else None)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")
