"""MIL types and literal values ↔ their proto messages (ValueType, Value, TensorValue).

Const values are stored as the MIL dtype module says: numpy arrays in `DType.numpy` (sub-byte types
unpacked one element per int8/uint8, bf16/fp8 as raw bits), a python `str` for a string scalar, and
python lists for list literals.

Which `TensorValue` arm carries a dtype is fixed by the format (FORMAT.md §3.5): floats for fp32,
doubles for fp64, ints for int32/int16/uint16, longInts for int64/uint64, bools, strings, and raw
little-endian `bytes` for everything else (fp16, 8-bit, uint32, packed sub-byte, bf16, fp8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import PackageError
from ..mil import dtypes as dt
from ..mil.targets import Target
from ..mil.types import DictType, ListType, StateType, Symbol, TensorType, TupleType, ValueType
from . import subbyte
from .proto import coreml_pb2 as pb

# A const goes to the weight blob when it has at least this many elements and a blob-able dtype.
BLOB_MIN_ELEMENTS = 10
_BLOB_DTYPES = frozenset({dt.fp16, dt.fp32, dt.uint8, dt.int8})
_BLOB_DTYPES_IOS18 = frozenset({dt.int16, dt.uint16, dt.int32, dt.uint32})

_ARM = {dt.fp32: "floats", dt.fp64: "doubles", dt.int32: "ints", dt.int16: "ints", dt.uint16: "ints",
        dt.int64: "longInts", dt.uint64: "longInts", dt.bool_: "bools", dt.string: "strings"}


def goes_to_blob(value: Any, ttype: ValueType, target: Target) -> bool:
    """The weight-file rule: ≥10 elements of fp16/fp32/uint8/int8 (plus 16/32-bit ints from iOS18).

    Sub-byte types count as their 8-bit container, so large ones always go to the blob."""
    if not isinstance(ttype, TensorType) or not isinstance(value, np.ndarray):
        return False
    if value.size < BLOB_MIN_ELEMENTS:
        return False
    d = ttype.dtype
    return d in _BLOB_DTYPES or d.is_sub_byte or (target >= Target.iOS18 and d in _BLOB_DTYPES_IOS18)


# ------------------------------------------------------------------------------------- types ---


def type_to_proto(t: ValueType, out: pb.ValueType | None = None) -> pb.ValueType:
    out = pb.ValueType() if out is None else out
    if isinstance(t, TensorType):
        tensor = out.tensorType
        tensor.dataType = t.dtype.proto
        tensor.rank = t.rank
        for d in t.shape:
            _dim_to_proto(d, tensor.dimensions.add())
    elif isinstance(t, ListType):
        type_to_proto(t.elem, out.listType.type)
        _dim_to_proto(t.length, out.listType.length)
    elif isinstance(t, TupleType):
        out.tupleType.SetInParent()
        for member in t.types:
            type_to_proto(member, out.tupleType.types.add())
    elif isinstance(t, DictType):
        type_to_proto(t.key, out.dictionaryType.keyType)
        type_to_proto(t.value, out.dictionaryType.valueType)
    elif isinstance(t, StateType):
        type_to_proto(t.wrapped, out.stateType.wrappedType)
    else:
        raise PackageError(f"cannot serialize the MIL type {t!r}")
    return out


def _dim_to_proto(d, out: pb.Dimension) -> None:
    # Symbols (and unknown list lengths) are all "unknown" on disk: the format has no names for them.
    if isinstance(d, int):
        out.constant.size = d
        out.constant.SetInParent()
    else:
        out.unknown.SetInParent()


def type_from_proto(msg: pb.ValueType, where: str) -> ValueType:
    arm = msg.WhichOneof("type")
    if arm == "tensorType":
        tensor = msg.tensorType
        dtype = dtype_from_proto(tensor.dataType, where)
        if tensor.rank < 0:
            raise PackageError(f"{where}: tensors of unknown rank are not supported")
        if len(tensor.dimensions) != tensor.rank:
            raise PackageError(f"{where}: tensor type has rank {tensor.rank} but {len(tensor.dimensions)} "
                               "dimensions")
        return TensorType(dtype, tuple(_dim_from_proto(d, where) for d in tensor.dimensions))
    if arm == "listType":
        elem = type_from_proto(msg.listType.type, where)
        length = _dim_from_proto(msg.listType.length, where) if msg.listType.HasField("length") else None
        return ListType(elem, None if isinstance(length, Symbol) else length)
    if arm == "tupleType":
        return TupleType(tuple(type_from_proto(m, where) for m in msg.tupleType.types))
    if arm == "dictionaryType":
        return DictType(type_from_proto(msg.dictionaryType.keyType, where),
                        type_from_proto(msg.dictionaryType.valueType, where))
    if arm == "stateType":
        wrapped = type_from_proto(msg.stateType.wrappedType, where)
        if not isinstance(wrapped, TensorType):
            raise PackageError(f"{where}: a state must wrap a tensor, found {wrapped}")
        return StateType(wrapped)
    raise PackageError(f"{where}: value type is not set")


def _dim_from_proto(msg: pb.Dimension, where: str):
    arm = msg.WhichOneof("dimension")
    if arm == "constant":
        return int(msg.constant.size)
    if arm == "unknown":
        if msg.unknown.variadic:
            raise PackageError(f"{where}: variadic dimensions are not supported")
        return Symbol.fresh()
    raise PackageError(f"{where}: dimension has neither a constant size nor 'unknown'")


def dtype_from_proto(code: int, where: str) -> dt.DType:
    try:
        return dt.BY_PROTO[code]
    except KeyError:
        raise PackageError(f"{where}: unknown MIL DataType {code}") from None


# ------------------------------------------------------------------------------------ values ---


def literal_to_proto(value: Any, ttype: ValueType, out: pb.Value | None = None) -> pb.Value:
    """An immediate (inline) Value."""
    out = pb.Value() if out is None else out
    type_to_proto(ttype, out.type)
    if isinstance(ttype, TensorType):
        tensor_to_proto(value, ttype.dtype, out.immediateValue.tensor)
    elif isinstance(ttype, ListType):
        items = out.immediateValue.list
        items.SetInParent()
        for item in value:
            _, item_type = _tensor_of(item, ttype.elem.dtype)
            literal_to_proto(item, item_type, items.values.add())
    elif isinstance(ttype, DictType) and isinstance(value, dict):
        pairs = out.immediateValue.dictionary
        pairs.SetInParent()
        for key in sorted(value):
            pair = pairs.values.add()
            literal_to_proto(key, TensorType(ttype.key.dtype, ()), pair.key)
            literal_to_proto(value[key], TensorType(ttype.value.dtype, ()), pair.value)
    else:
        raise PackageError(f"cannot write a literal of type {ttype}")
    return out


def _tensor_of(item: Any, dtype: dt.DType) -> tuple[Any, TensorType]:
    if isinstance(item, str):
        return item, TensorType(dt.string, ())
    arr = np.asarray(item)
    return arr, TensorType(dtype, arr.shape)


def blob_value_to_proto(ttype: TensorType, file_name: str, offset: int, out: pb.Value) -> pb.Value:
    type_to_proto(ttype, out.type)
    out.blobFileValue.fileName = file_name
    out.blobFileValue.offset = offset
    return out


def tensor_to_proto(value: Any, dtype: dt.DType, out: pb.TensorValue) -> None:
    if dtype is dt.string:
        flat = [value] if isinstance(value, str) else [str(s) for s in np.asarray(value, dtype=object).reshape(-1)]
        out.strings.SetInParent()
        out.strings.values.extend(flat)
        return
    flat = np.ascontiguousarray(np.asarray(value, dtype=dtype.numpy)).reshape(-1)
    arm = _ARM.get(dtype)
    if arm is None:  # raw little-endian bytes
        if dtype.is_sub_byte:
            data = subbyte.pack(flat, dtype.name)
        else:
            data = flat.astype(flat.dtype.newbyteorder("<"), copy=False).tobytes()
        out.bytes.values = data
        return
    repeated = getattr(out, arm)
    repeated.SetInParent()
    if dtype in (dt.int16, dt.uint16):
        flat = flat.astype(np.int32)
    elif dtype is dt.uint64:
        flat = flat.view(np.int64)
    repeated.values.extend(flat.tolist())


def value_from_proto(msg: pb.Value, where: str, blob_reader=None) -> tuple[Any, ValueType]:
    """(stored value, type) of a literal or blob Value; `blob_reader(file_name)` opens weight files."""
    ttype = type_from_proto(msg.type, where)
    arm = msg.WhichOneof("value")
    if arm == "blobFileValue":
        if not isinstance(ttype, TensorType) or not ttype.is_static:
            raise PackageError(f"{where}: a blob value needs a static tensor type, found {ttype}")
        if blob_reader is None:
            raise PackageError(f"{where}: refers to a weight file but the model has none")
        blob = msg.blobFileValue
        raw = blob_reader(blob.fileName).read(blob.offset, _blob_dtype_name(ttype.dtype, where), ttype.shape)
        # Blob reads are views of a read-only map: copy so the program owns ordinary arrays.
        return np.array(raw, dtype=ttype.dtype.numpy), ttype
    if arm != "immediateValue":
        raise PackageError(f"{where}: value has neither an immediate nor a blob payload")
    imm = msg.immediateValue
    kind = imm.WhichOneof("value")
    if kind == "tensor":
        if not isinstance(ttype, TensorType):
            raise PackageError(f"{where}: tensor literal declared with type {ttype}")
        return tensor_from_proto(imm.tensor, ttype, where), ttype
    if kind == "list":
        return [value_from_proto(v, where, blob_reader)[0] for v in imm.list.values], ttype
    if kind == "tuple":
        return tuple(value_from_proto(v, where, blob_reader)[0] for v in imm.tuple.values), ttype
    if kind == "dictionary":
        pairs = ((value_from_proto(p.key, where)[0], value_from_proto(p.value, where, blob_reader)[0])
                 for p in imm.dictionary.values)
        return {(k if isinstance(k, str) else k.item()): v for k, v in pairs}, ttype
    raise PackageError(f"{where}: immediate value is empty")


def _blob_dtype_name(dtype: dt.DType, where: str) -> str:
    from .blob import BLOB_DTYPES

    if dtype.name not in BLOB_DTYPES:
        raise PackageError(f"{where}: {dtype} values cannot be stored in a weight blob")
    return dtype.name


def tensor_from_proto(msg: pb.TensorValue, ttype: TensorType, where: str) -> Any:
    dtype = ttype.dtype
    shape = ttype.shape
    if not ttype.is_static:
        raise PackageError(f"{where}: a literal needs a static shape, found {ttype}")
    count = int(np.prod(shape, dtype=np.int64))
    arm = msg.WhichOneof("value")
    if arm == "bytes":
        data = msg.bytes.values
        if dtype.is_sub_byte:
            flat = subbyte.unpack(data, dtype.name, count)
        else:
            little = dtype.numpy.newbyteorder("<")
            if len(data) != count * little.itemsize:
                raise PackageError(f"{where}: {ttype} literal needs {count * little.itemsize} bytes, found "
                                   f"{len(data)}")
            flat = np.frombuffer(data, dtype=little).astype(dtype.numpy)
    elif arm is None:
        raise PackageError(f"{where}: tensor literal of {ttype} has no data")
    else:
        values = list(getattr(msg, arm).values)
        if dtype is dt.string:
            if len(values) != count:
                raise PackageError(f"{where}: {ttype} literal needs {count} strings, found {len(values)}")
            return values[0] if not shape else np.array(values, dtype=object).reshape(shape)
        if dtype is dt.uint64:  # travels as int64 bit patterns
            flat = np.asarray(values, dtype=np.int64).view(np.uint64)
        else:
            flat = np.asarray(values, dtype=dtype.numpy)
    if flat.size != count:
        raise PackageError(f"{where}: {ttype} literal needs {count} elements, found {flat.size}")
    return np.array(flat.reshape(shape), dtype=dtype.numpy)
