"""The Core ML file format, at file level: our protobuf schema, weight blobs and `.mlpackage` folders.

- `torch_coreml.format.proto.coreml_pb2`: generated messages (Model, Program, Value, ...)
- `torch_coreml.format.blob`: weight.bin writer / reader
- `torch_coreml.format.subbyte`: LSB-first packing of int4 / uint1..uint6 values
- `torch_coreml.format.package`: .mlpackage writer / reader

Nothing here knows about MIL objects; turning a MIL program into these messages is the
serializer's job.
"""
