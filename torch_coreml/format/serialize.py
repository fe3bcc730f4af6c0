"""MIL Program → Core ML model proto and `.mlpackage`, plus the top-level save / load pair.

    save_model("m.mlpackage", program, interface)     # atomic; interface defaults to describe_function
    program, interface = load_model("m.mlpackage")

One generic translation covers every op: inputs bound by name (a variadic input becomes several
bindings), outputs as NamedValueTypes, nested blocks with their inputs and outputs, and the op's
`name` attribute. Only `const` is special: its value goes inline or to the weight blob by the
coremltools rule (see `values.goes_to_blob`); identical blob values are written once.

A const op the reader created for a literal binding (its `binding` attribute is "literal" or
"attribute") is not written as an op: each use writes its value back where it came from.

The bytes are deterministic: ops and blobs in program order, maps sorted by key.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import PackageError, TorchCoreMLError
from ..mil.program import Block, ContentKey, Function, Operation, Program, Var
from ..mil.targets import Target
from ..mil.types import DictType, TensorType
from ..mil import dtypes as dt
from . import values
from .description import (ModelInterface, check_against_function, check_io_rules, describe_function,
                          interface_to_proto)
from .package import WEIGHT_FILE_REFERENCE, PackageWriter, read_package
from .proto import coreml_pb2 as pb

logger = logging.getLogger(__name__)

PROGRAM_VERSION = 1
# How the reader marks const ops it made from values bound inline in the file (see module doc).
BINDING_ATTR = "binding"
INLINE_BINDINGS = ("literal", "attribute")


class WeightStore:
    """Writes blob values through a lazily opened BlobWriter, once per distinct (dtype, bytes).

    Distinct values are told apart by a sample of their bytes (`ContentKey`): the full bytes are hashed
    only for values whose samples match, not once more for every weight of the model."""

    def __init__(self, open_writer: Callable[[], Any], file_name: str = WEIGHT_FILE_REFERENCE):
        self._open_writer = open_writer
        self.file_name = file_name
        self._offsets: dict[tuple[str, ContentKey], int] = {}
        self.blob_count = 0
        self.reused = 0

    def offset_for(self, value: np.ndarray, dtype: dt.DType) -> int:
        array = np.ascontiguousarray(value, dtype=dtype.numpy)
        key = (dtype.name, ContentKey(value, dtype.numpy, array=array))
        offset = self._offsets.get(key)
        if offset is None:
            offset = self._open_writer().write(array.reshape(-1), dtype.name)
            self._offsets[key] = offset
            self.blob_count += 1
        else:
            self.reused += 1
        return offset


def model_to_proto(program: Program, interface: ModelInterface, weights: WeightStore) -> pb.Model:
    if len(program.functions) != 1:
        raise PackageError(f"only single-function programs can be saved yet; this one has "
                           f"{sorted(program.functions)}")
    fn = program.main
    if fn.name != "main":
        raise PackageError(f"the function of a single-function model must be called 'main', not {fn.name!r}")
    check_io_rules(fn)
    check_against_function(interface, fn)
    model = pb.Model()
    model.specificationVersion = fn.target.spec_version
    model.description.CopyFrom(interface_to_proto(interface, fn.target))
    program_to_proto(program, weights, model.mlProgram)
    return model


def program_to_proto(program: Program, weights: WeightStore, out: pb.Program | None = None) -> pb.Program:
    out = pb.Program() if out is None else out
    out.version = PROGRAM_VERSION
    for name, fn in program.functions.items():
        _function_to_proto(fn, weights, out.functions[name])
    for key, value in program.attributes.items():
        _program_attribute(key, value, out.attributes[key])
    return out


def _program_attribute(key: str, value: Any, out: pb.Value) -> None:
    string = TensorType(dt.string, ())
    if isinstance(value, str):
        values.literal_to_proto(value, string, out)
    elif isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        values.literal_to_proto(value, DictType(string, string), out)
    else:
        raise PackageError(f"program attribute {key!r}: only strings and str→str dicts can be saved, "
                           f"got {type(value).__name__}")


def _function_to_proto(fn: Function, weights: WeightStore, out: pb.Function) -> None:
    for var in fn.inputs:
        _named_type(var, out.inputs.add())
    out.opset = fn.opset
    _block_to_proto(fn.block, _ValueWriter(fn.target, weights), out.block_specializations[fn.opset])


class _ValueWriter:
    """Writes each const value inline or to the weight blob, by the rule of the function's target."""

    def __init__(self, target: Target, weights: WeightStore):
        self.target = target
        self.weights = weights

    def value(self, value: Any, ttype, out: pb.Value) -> pb.Value:
        if values.goes_to_blob(value, ttype, self.target):
            offset = self.weights.offset_for(value, ttype.dtype)
            return values.blob_value_to_proto(ttype, self.weights.file_name, offset, out)
        return values.literal_to_proto(value, ttype, out)


def _named_type(var: Var, out: pb.NamedValueType) -> None:
    out.name = var.name
    values.type_to_proto(var.type, out.type)


def _block_to_proto(block: Block, ctx: _ValueWriter, out: pb.Block) -> None:
    for var in block.inputs:
        _named_type(var, out.inputs.add())
    for op in block.operations:
        if op.op_type == "const":
            if op.attributes.get(BINDING_ATTR) not in INLINE_BINDINGS:
                _const_to_proto(op, ctx, out.operations.add())
        else:
            _op_to_proto(op, ctx, out.operations.add())
    for var in block.outputs:
        if _is_inline(var):
            raise PackageError(f"block output {var.name!r} is an inline literal; it needs a const op")
        out.outputs.append(var.name)


def _is_inline(var: Var) -> bool:
    return var.is_const and var.op.attributes.get(BINDING_ATTR) in INLINE_BINDINGS


def _const_to_proto(op: Operation, ctx: _ValueWriter, out: pb.Operation) -> None:
    out.type = "const"
    (var,) = op.outputs
    _named_type(var, out.outputs.add())
    values.literal_to_proto(op.name, TensorType(dt.string, ()), out.attributes["name"])
    try:
        ctx.value(op.attributes["val"], var.type, out.attributes["val"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise PackageError(f"const {op.name!r} ({var.type}): cannot serialize its value: {exc}") from exc


def _op_to_proto(op: Operation, ctx: _ValueWriter, out: pb.Operation) -> None:
    out.type = op.op_type
    values.literal_to_proto(op.name, TensorType(dt.string, ()), out.attributes["name"])
    for key, bound in op.inputs.items():
        vars_ = bound if isinstance(bound, list) else [bound]
        if len(vars_) == 1 and _is_inline(vars_[0]) and vars_[0].op.attributes[BINDING_ATTR] == "attribute":
            ctx.value(vars_[0].value, vars_[0].type, out.attributes[key])
            continue
        argument = out.inputs[key]
        for var in vars_:
            binding = argument.arguments.add()
            if _is_inline(var):
                ctx.value(var.value, var.type, binding.value)
            else:
                binding.name = var.name
    for var in op.outputs:
        _named_type(var, out.outputs.add())
    for block in op.blocks:
        _block_to_proto(block, ctx, out.blocks.add())
    for key, value in op.attributes.items():
        if key in ("name", BINDING_ATTR):
            continue
        raise PackageError(f"op {op.op_type} {op.name!r}: attribute {key!r} has no serialized form; "
                           "ops other than const carry only their name")


# ----------------------------------------------------------------------------------- top level ---


def save_model(path: str | os.PathLike, program: Program, interface: ModelInterface | None = None) -> Path:
    """Write `program` and its interface as a `.mlpackage` at `path` (atomically); returns the path."""
    if interface is None:
        interface = describe_function(program.main)
    with PackageWriter(path) as package:
        weights = WeightStore(lambda: package.blob)
        model = model_to_proto(program, interface, weights)
        logger.debug("%s: %d weight blobs written, %d reused", path, weights.blob_count, weights.reused)
        return package.finish(model.SerializeToString(deterministic=True))


def load_model(path: str | os.PathLike) -> tuple[Program, ModelInterface]:
    """Read a `.mlpackage`: the MIL program (every op checked against the catalogue) and its interface."""
    from .deserialize import model_from_proto

    with read_package(path) as contents:
        try:
            return model_from_proto(contents.spec, contents.blob_reader)
        except TorchCoreMLError as exc:
            raise type(exc)(f"{path}: {exc}") from exc
