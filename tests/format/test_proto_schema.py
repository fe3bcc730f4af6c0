"""Our proto schema is wire-compatible with Apple's Core ML schema.

Every message and enum in `coreml.proto` is paired by name with its counterpart in coremltools'
generated descriptors (Model.proto, FeatureTypes.proto, MIL.proto); each field we declare must have
the same number, type, cardinality, referenced type and oneof as Apple's. This is the proof of
compatibility: protobuf parsers only see field numbers and wire types.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from torch_coreml.format.proto import coreml_pb2

from coremltools.proto import Model_pb2  # noqa: E402
from coremltools.proto import FeatureTypes_pb2  # noqa: E402
from coremltools.proto import MIL_pb2  # noqa: E402

OUR_PACKAGE = coreml_pb2.DESCRIPTOR.package
APPLE_FILES = (Model_pb2.DESCRIPTOR, FeatureTypes_pb2.DESCRIPTOR, MIL_pb2.DESCRIPTOR)
# Messages where we deliberately declare only some of Apple's fields.
PARTIAL = {"Model", "ModelDescription"}
# The gencode of coreml_pb2.py must not be newer than the protobuf we require.
PROTOBUF_LOWER_BOUND = (5, 26, 1)
REPO = Path(__file__).resolve().parents[2]


def _apple_top_level(name: str):
    for file in APPLE_FILES:
        if name in file.message_types_by_name:
            return file.message_types_by_name[name]
        if name in file.enum_types_by_name:
            return file.enum_types_by_name[name]
    raise AssertionError(f"Apple's schema has no top-level type {name}")


def _relative_name(descriptor) -> str:
    """A type's name below its package, e.g. 'Value.BlobFileValue'."""
    package = descriptor.file.package
    return descriptor.full_name[len(package) + 1 :]


def _our_messages(descriptors=None):
    for message in descriptors if descriptors is not None else coreml_pb2.DESCRIPTOR.message_types_by_name.values():
        yield message
        yield from _our_messages(message.nested_types)


def _our_enums():
    yield from coreml_pb2.DESCRIPTOR.enum_types_by_name.values()
    for message in _our_messages():
        yield from message.enum_types


def _apple_counterpart(ours):
    """Apple's type with the same path (outer message names, then the type's own name)."""
    parts = _relative_name(ours).split(".")
    found = _apple_top_level(parts[0])
    for part in parts[1:]:
        nested = {**found.nested_types_by_name, **found.enum_types_by_name}
        assert part in nested, f"Apple's {found.full_name} has no nested type {part}"
        found = nested[part]
    return found


def test_package_differs_from_apples():
    assert OUR_PACKAGE == "torch_coreml.spec"
    assert all(not f.package.startswith(OUR_PACKAGE) for f in APPLE_FILES)


@pytest.mark.parametrize("ours", list(_our_messages()), ids=lambda d: _relative_name(d))
def test_message_fields_match_apple(ours):
    apple = _apple_counterpart(ours)
    for field in ours.fields:
        assert field.name in apple.fields_by_name, f"{apple.full_name} has no field {field.name}"
        theirs = apple.fields_by_name[field.name]
        where = f"{_relative_name(ours)}.{field.name}"
        assert field.number == theirs.number, where
        assert field.type == theirs.type, where
        assert field.is_repeated == theirs.is_repeated, where
        assert field.is_packed == theirs.is_packed, where
        for attr in ("message_type", "enum_type"):
            our_ref, their_ref = getattr(field, attr), getattr(theirs, attr)
            assert (our_ref is None) == (their_ref is None), where
            if our_ref is not None:
                assert _relative_name(our_ref) == _relative_name(their_ref), where
        our_oneof = field.containing_oneof.name if field.containing_oneof else None
        their_oneof = theirs.containing_oneof.name if theirs.containing_oneof else None
        assert our_oneof == their_oneof, where
    if ours.name not in PARTIAL:
        missing = set(apple.fields_by_name) - set(ours.fields_by_name)
        assert not missing, f"{_relative_name(ours)} lacks Apple's fields {sorted(missing)}"


@pytest.mark.parametrize("ours", list(_our_enums()), ids=lambda d: _relative_name(d))
def test_enums_match_apple_exactly(ours):
    apple = _apple_counterpart(ours)
    assert {v.name: v.number for v in ours.values} == {v.name: v.number for v in apple.values}


def test_every_mil_type_is_declared():
    ours = {_relative_name(d) for d in _our_messages()} | {_relative_name(e) for e in _our_enums()}
    apple_mil = set()
    stack = list(MIL_pb2.DESCRIPTOR.message_types_by_name.values())
    while stack:
        message = stack.pop()
        apple_mil.add(_relative_name(message))
        apple_mil.update(_relative_name(e) for e in message.enum_types)
        stack.extend(message.nested_types)
    apple_mil.update(MIL_pb2.DESCRIPTOR.enum_types_by_name)
    assert apple_mil <= ours, sorted(apple_mil - ours)


def test_bytes_cross_parse_both_ways():
    ours = coreml_pb2.Model(specificationVersion=9)
    feature = ours.description.input.add(name="x")
    feature.type.multiArrayType.shape.extend([1, 3])
    feature.type.multiArrayType.dataType = coreml_pb2.ArrayFeatureType.FLOAT16
    feature.type.multiArrayType.shapeRange.sizeRanges.add(lowerBound=1, upperBound=-1)
    feature.type.isOptional = True
    ours.description.metadata.userDefined["k"] = "v"
    function = ours.mlProgram.functions["main"]
    function.opset = "CoreML8"
    value = function.block_specializations["CoreML8"].operations.add(type="const").attributes["val"]
    value.type.tensorType.dataType = coreml_pb2.UINT3
    value.blobFileValue.offset = 192

    apple = Model_pb2.Model.FromString(ours.SerializeToString())
    assert apple.description.input[0].type.multiArrayType.shapeRange.sizeRanges[0].upperBound == -1
    assert apple.mlProgram.functions["main"].block_specializations["CoreML8"].operations[0].attributes[
        "val"
    ].type.tensorType.dataType == MIL_pb2.UINT3
    back = coreml_pb2.Model.FromString(apple.SerializeToString(deterministic=True))
    assert back == ours


def test_generated_module_matches_proto_source():
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "set.pb"
        status = protoc.main(["protoc", "-I", str(REPO), f"--descriptor_set_out={out}",
                              "torch_coreml/format/proto/coreml.proto"])
        assert status == 0
        compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    committed = descriptor_pb2.FileDescriptorProto.FromString(coreml_pb2.DESCRIPTOR.serialized_pb)
    _drop_json_names(compiled)  # protoc adds them to descriptor sets, never to Python gencode
    assert compiled == committed, "coreml_pb2.py is stale: run python scripts/regen_proto.py"


def _drop_json_names(file_proto) -> None:
    stack = list(file_proto.message_type)
    while stack:
        message = stack.pop()
        for field in message.field:
            field.ClearField("json_name")
        stack.extend(message.nested_type)


def test_gencode_is_not_newer_than_protobuf_lower_bound():
    source = (REPO / "torch_coreml/format/proto/coreml_pb2.py").read_text()
    version = re.search(r"^# Protobuf Python Version: (\d+)\.(\d+)\.(\d+)", source, re.MULTILINE)
    assert version is not None
    assert tuple(int(part) for part in version.groups()) <= PROTOBUF_LOWER_BOUND
