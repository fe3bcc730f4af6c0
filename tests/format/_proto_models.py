"""Hand-built Model protos for the package tests, written with our own schema only (no MIL objects)."""

from __future__ import annotations

import numpy as np

from torch_coreml.format.package import WEIGHT_FILE_REFERENCE
from torch_coreml.format.proto import coreml_pb2 as pb

OPSET = {6: "CoreML5", 7: "CoreML6", 8: "CoreML7", 9: "CoreML8", 10: "CoreML9"}
# A 10-element fp32 constant: the smallest that coremltools would also put in the blob.
BIAS = np.linspace(-1, 1, 10, dtype=np.float32).reshape(1, 10)


def tensor_type(value_type: pb.ValueType, dtype: int, shape) -> pb.ValueType:
    value_type.tensorType.dataType = dtype
    value_type.tensorType.rank = len(shape)
    for size in shape:
        value_type.tensorType.dimensions.add().constant.size = size
    return value_type


def string_value(value: pb.Value, text: str) -> None:
    tensor_type(value.type, pb.STRING, ())
    value.immediateValue.tensor.strings.values.append(text)


def array_feature(features, name: str, shape) -> None:
    feature = features.add(name=name)
    feature.type.multiArrayType.shape.extend(shape)
    feature.type.multiArrayType.dataType = pb.ArrayFeatureType.FLOAT32


def add_op(block: pb.Block, op_type: str, inputs: dict[str, str], output: str, shape) -> pb.Operation:
    op = block.operations.add(type=op_type)
    for param, source in inputs.items():
        op.inputs[param].arguments.add(name=source)
    tensor_type(op.outputs.add(name=output).type, pb.FLOAT32, shape)
    string_value(op.attributes["name"], f"{output}_op")
    return op


def relu_model(spec_version: int = 6, shape=(1, 4), bias_offset: int | None = None) -> pb.Model:
    """y = relu(x), or y = relu(x) + bias with the bias const stored in the blob at `bias_offset`."""
    model = pb.Model(specificationVersion=spec_version)
    array_feature(model.description.input, "x", shape)
    array_feature(model.description.output, "y", shape)
    model.description.metadata.author = "torch_coreml tests"

    model.mlProgram.version = 1
    function = model.mlProgram.functions["main"]
    tensor_type(function.inputs.add(name="x").type, pb.FLOAT32, shape)
    function.opset = OPSET[spec_version]
    block = function.block_specializations[function.opset]
    if bias_offset is None:
        add_op(block, "relu", {"x": "x"}, "y", shape)
    else:
        add_op(block, "relu", {"x": "x"}, "r", shape)
        const = block.operations.add(type="const")
        tensor_type(const.outputs.add(name="bias").type, pb.FLOAT32, shape)
        string_value(const.attributes["name"], "bias")
        val = const.attributes["val"]
        tensor_type(val.type, pb.FLOAT32, shape)
        val.blobFileValue.fileName = WEIGHT_FILE_REFERENCE
        val.blobFileValue.offset = bias_offset
        add_op(block, "add", {"x": "r", "y": "bias"}, "y", shape)
    block.outputs.append("y")
    return model
