"""Core ML model proto → MIL Program and ModelInterface.

Every op is looked up in the catalogue for its function's opset and its inputs are checked and its
output types inferred exactly as the Builder would (`infer_types`), so a package that uses an op we
do not know, or binds it wrongly, fails here with the op named. The file's declared output types are
merged with the inferred ones: a static dim from either side wins, and a disagreement on dtype, rank
or a static dim is an error (a corrupt file, or a catalogue bug).

Unknown dims become fresh Symbols. Values bound inline in the file (literal bindings, and the
attribute-style parameters of iOS16/17 constexpr ops) become const ops marked with the `binding`
attribute so the writer can put them back where they were.
"""

from __future__ import annotations

import logging
from collections import ChainMap
from typing import Any, Callable

from ..errors import MILTypeError, PackageError, TorchCoreMLError, UnsupportedOpError
from ..mil.ops import CATALOGUE
from ..mil.ops.spec import OpContext, infer_types
from ..mil.program import Block, Function, Operation, Program, Var
from ..mil.targets import Target, target_for_opset
from ..mil.types import TensorType, ValueType
from . import values
from .description import ModelInterface, check_against_function, interface_from_proto
from .proto import coreml_pb2 as pb
from .serialize import BINDING_ATTR

logger = logging.getLogger(__name__)


def model_from_proto(model: pb.Model, blob_reader: Callable | None) -> tuple[Program, ModelInterface]:
    spec_version = model.specificationVersion
    try:
        target = Target(spec_version)
    except ValueError:
        known = ", ".join(f"{t.spec_version} ({t.name})" for t in Target)
        raise PackageError(f"specification version {spec_version} is not supported; known: {known}") from None
    if model.WhichOneof("Type") != "mlProgram":
        raise PackageError("the model is not an ML Program")
    program = program_from_proto(model.mlProgram, target, blob_reader)
    if len(program.functions) != 1:
        raise PackageError(f"multi-function models are not supported yet (functions: {sorted(program.functions)})")
    interface = interface_from_proto(model.description, program.main)
    check_against_function(interface, program.main)
    return program, interface


def program_from_proto(msg: pb.Program, max_target: Target, blob_reader: Callable | None = None) -> Program:
    if msg.version != 1:
        raise PackageError(f"MIL program version {msg.version} is not supported (expected 1)")
    program = Program()
    for name in sorted(msg.functions):
        program.add(_function_from_proto(name, msg.functions[name], max_target, blob_reader))
    for key in sorted(msg.attributes):
        value, _ = values.value_from_proto(msg.attributes[key], f"program attribute {key!r}")
        program.attributes[key] = value
    return program


def _function_from_proto(name: str, msg: pb.Function, max_target: Target, blob_reader) -> Function:
    where = f"function {name!r}"
    try:
        target = target_for_opset(msg.opset)
    except ValueError as exc:
        raise PackageError(f"{where}: {exc}") from None
    if target > max_target:
        raise PackageError(f"{where}: opset {msg.opset} is newer than the model's specification version "
                           f"{max_target.spec_version}")
    if msg.opset not in msg.block_specializations:
        raise PackageError(f"{where}: no block for its opset {msg.opset!r}; found "
                           f"{sorted(msg.block_specializations)}")
    if len(msg.block_specializations) > 1:
        logger.warning("%s: using the %s block; other specializations %s are ignored", where, msg.opset,
                       sorted(set(msg.block_specializations) - {msg.opset}))
    reader = _Reader(name, target, blob_reader)
    inputs = [reader.declare(nvt.name, values.type_from_proto(nvt.type, f"{where} input {nvt.name!r}"))
              for nvt in msg.inputs]
    block = reader.block(msg.block_specializations[msg.opset], reader.scope, inputs=[])
    return Function(name, inputs, block, target)


class _Reader:
    def __init__(self, fn_name: str, target: Target, blob_reader):
        self.fn_name = fn_name
        self.target = target
        self.blob_reader = blob_reader
        self.scope: ChainMap = ChainMap()
        self.used_names: set[str] = set()

    def declare(self, name: str, ttype: ValueType, scope: ChainMap | None = None) -> Var:
        if not name:
            raise PackageError(f"function {self.fn_name!r}: a value has an empty name")
        if name in self.used_names:
            raise PackageError(f"function {self.fn_name!r}: value name {name!r} is defined twice")
        self.used_names.add(name)
        var = Var(name, ttype)
        (self.scope if scope is None else scope)[name] = var
        return var

    def fresh_name(self, hint: str) -> str:
        name, n = hint, 0
        while name in self.used_names:
            name, n = f"{hint}_{n}", n + 1
        return name

    def block(self, msg: pb.Block, scope: ChainMap, inputs: list[Var] | None = None) -> Block:
        block = Block(inputs if inputs is not None else [])
        for op_msg in msg.operations:
            for op in self.operation(op_msg, scope):
                block.append(op)
        for out_name in msg.outputs:
            block.outputs.append(self.lookup(out_name, scope, f"block output {out_name!r}"))
        return block

    def lookup(self, name: str, scope: ChainMap, where: str) -> Var:
        try:
            return scope[name]
        except KeyError:
            raise PackageError(f"function {self.fn_name!r}: {where} refers to {name!r}, which is not "
                               "defined before it") from None

    def operation(self, msg: pb.Operation, scope: ChainMap) -> list[Operation]:
        """The op, preceded by const ops for its inline values."""
        op_name = self._op_name(msg)
        where = f"function {self.fn_name!r}, op {msg.type} {op_name!r}"
        if msg.type == "const":
            return [self._const(msg, op_name, scope, where)]
        try:
            spec = CATALOGUE.lookup(msg.type, self.target)
        except UnsupportedOpError as exc:
            raise UnsupportedOpError(f"{where}: {exc}") from None
        made: list[Operation] = []
        bound: dict[str, Any] = {}
        for key in sorted(msg.inputs):
            vars_ = [self._binding(b, key, op_name, scope, made, where) for b in msg.inputs[key].arguments]
            decl = next((i for i in spec.inputs if i.name == key), None)
            bound[key] = vars_ if (decl is not None and decl.variadic) or len(vars_) != 1 else vars_[0]
        for key in sorted(msg.attributes):
            if key == "name":
                continue
            if key in bound or all(i.name != key for i in spec.inputs):
                raise PackageError(f"{where}: attribute {key!r} is neither the name nor an input of {msg.type}")
            value, ttype = values.value_from_proto(msg.attributes[key], f"{where} attribute {key!r}",
                                                   self.blob_reader)
            bound[key] = self._inline_const(value, ttype, f"{op_name}_{key}", "attribute", scope, made)
        blocks = []
        for block_msg in msg.blocks:
            inner = scope.new_child()
            block_inputs = [self.declare(n.name, values.type_from_proto(n.type, f"{where} block input {n.name!r}"),
                                         inner) for n in block_msg.inputs]
            blocks.append(self.block(block_msg, inner, block_inputs))
        ctx = OpContext(spec, bound, self.target, blocks, name=op_name)
        try:
            inferred = infer_types(ctx)
        except MILTypeError as exc:
            raise MILTypeError(f"function {self.fn_name!r}: {exc}") from None
        except TorchCoreMLError:
            raise
        except Exception as exc:
            exc.add_note(f"while inferring the output types of {where}")
            raise
        if len(inferred) != len(msg.outputs):
            raise MILTypeError(f"{where}: the file declares {len(msg.outputs)} outputs, the catalogue infers "
                               f"{len(inferred)}")
        outputs = []
        for nvt, inferred_type in zip(msg.outputs, inferred):
            declared = values.type_from_proto(nvt.type, f"{where} output {nvt.name!r}")
            outputs.append(self.declare(nvt.name, merge_types(inferred_type, declared, f"{where} output {nvt.name!r}"),
                                        scope))
        op = Operation(msg.type, op_name, bound, outputs, blocks=blocks)
        for block in blocks:
            block.parent = op
        return made + [op]

    def _op_name(self, msg: pb.Operation) -> str:
        if "name" in msg.attributes:
            value, _ = values.value_from_proto(msg.attributes["name"], f"op {msg.type} name")
            if isinstance(value, str) and value:
                return value
        return (msg.outputs[0].name if msg.outputs else msg.type) + "_op"

    def _const(self, msg: pb.Operation, op_name: str, scope: ChainMap, where: str) -> Operation:
        if msg.inputs or msg.blocks or len(msg.outputs) != 1 or "val" not in msg.attributes:
            raise PackageError(f"{where}: a const op has no inputs or blocks, one output and a 'val' attribute")
        value, ttype = values.value_from_proto(msg.attributes["val"], where, self.blob_reader)
        declared = values.type_from_proto(msg.outputs[0].type, f"{where} output")
        var = self.declare(msg.outputs[0].name, merge_types(ttype, declared, where), scope)
        return Operation("const", op_name, {}, [var], attributes={"val": value})

    def _binding(self, msg, key: str, op_name: str, scope: ChainMap, made: list, where: str) -> Var:
        arm = msg.WhichOneof("binding")
        if arm == "name":
            return self.lookup(msg.name, scope, f"{where} input {key!r}")
        if arm == "value":
            value, ttype = values.value_from_proto(msg.value, f"{where} input {key!r}", self.blob_reader)
            return self._inline_const(value, ttype, f"{op_name}_{key}", "literal", scope, made)
        raise PackageError(f"{where}: input {key!r} has an empty binding")

    def _inline_const(self, value, ttype, hint: str, how: str, scope: ChainMap, made: list) -> Var:
        var = self.declare(self.fresh_name(hint), ttype, scope)
        made.append(Operation("const", var.name + "_op", {}, [var], attributes={"val": value, BINDING_ATTR: how}))
        return var


def merge_types(inferred: ValueType, declared: ValueType, where: str) -> ValueType:
    """The inferred type, sharpened by static dims the file declares; raises on disagreement."""
    if isinstance(inferred, TensorType) and isinstance(declared, TensorType):
        if inferred.dtype is not declared.dtype or inferred.rank != declared.rank:
            raise MILTypeError(f"{where}: the file declares {declared}, the catalogue infers {inferred}")
        dims = []
        for a, b in zip(inferred.shape, declared.shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                raise MILTypeError(f"{where}: the file declares {declared}, the catalogue infers {inferred}")
            dims.append(a if isinstance(a, int) or not isinstance(b, int) else b)
        return TensorType(inferred.dtype, tuple(dims))
    if type(inferred) is not type(declared):
        raise MILTypeError(f"{where}: the file declares {declared}, the catalogue infers {inferred}")
    return inferred
