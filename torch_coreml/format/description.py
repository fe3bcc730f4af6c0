"""The model interface: what a caller sees of a model besides its MIL program.

    x = Feature.ranged("x", dt.fp32, [(1, 8), (3, 3)], default=(1, 3))
    y = Feature("y", dt.fp32, (Symbol("n"), 3))
    interface = ModelInterface([x], [y], metadata=Metadata(author="me"))
    description = interface_to_proto(interface, Target.iOS17)

A `Feature` describes one input, output or state: its name, MIL element type and shape. A shape may
hold `Symbol` dims; for an input each symbolic dim is a flexible one, and the feature says how it may
vary: a `Ranges` (inclusive (lo, hi) per dim, hi None for unbounded) or an `Enumerated` list of whole
shapes, each with a default shape (the one written as the description's fixed shape).

The pytree structure of the original torch module's inputs and outputs travels as two treespec
strings (`torch.utils._pytree.treespec_dumps`) stored in the metadata's user-defined map under
torch_coreml's own keys, so any Core ML tool keeps them and they never clash with other tools' keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import PackageError
from ..mil import dtypes as dt
from ..mil.targets import Target
from ..mil.types import Dim, StateType, Symbol, TensorType
from .proto import coreml_pb2 as pb

logger = logging.getLogger(__name__)

PYTREE_IN_KEY = "torch_coreml.pytree_in"
PYTREE_OUT_KEY = "torch_coreml.pytree_out"

# ArrayFeatureType.ArrayDataType values for the MIL dtypes a model's I/O may have, with the first
# specification version that allows each (FORMAT.md §6 rule 13; int8 needs iOS26 = spec 10).
_ARRAY_DTYPES = {dt.fp32: (65568, 6), dt.int32: (131104, 6), dt.fp16: (65552, 7), dt.int8: (131080, 10)}
_FROM_ARRAY_DTYPE = {code: d for d, (code, _) in _ARRAY_DTYPES.items()}
_FROM_ARRAY_DTYPE[65600] = dt.fp64  # DOUBLE: legal in the format, never written by us


@dataclass(frozen=True)
class Ranges:
    """Per-dim inclusive bounds; `hi=None` means no upper bound. Fixed dims have lo == hi."""

    bounds: tuple[tuple[int, int | None], ...]
    default: tuple[int, ...] | None = None  # the lower bounds when not given

    def __post_init__(self):
        bounds = tuple((int(lo), None if hi is None or hi < 0 else int(hi)) for lo, hi in self.bounds)
        object.__setattr__(self, "bounds", bounds)
        for lo, hi in bounds:
            if lo < 0 or (hi is not None and hi < lo):
                raise ValueError(f"shape range ({lo}, {hi}) is empty or negative; expected 0 <= lo <= hi")
        default = tuple(lo for lo, _ in bounds) if self.default is None else tuple(int(d) for d in self.default)
        object.__setattr__(self, "default", default)
        if not self.allows(default):
            raise ValueError(f"default shape {default} is outside the ranges {list(bounds)}")

    @property
    def rank(self) -> int:
        return len(self.bounds)

    def allows(self, shape: Sequence[int]) -> bool:
        return len(shape) == self.rank and all(
            lo <= d and (hi is None or d <= hi) for d, (lo, hi) in zip(shape, self.bounds))

    def fixed_dims(self) -> list[int | None]:
        return [lo if lo == hi else None for lo, hi in self.bounds]

    def __str__(self) -> str:
        return "[" + ", ".join(str(lo) if lo == hi else f"{lo}..{'' if hi is None else hi}"
                               for lo, hi in self.bounds) + "]"


@dataclass(frozen=True)
class Enumerated:
    """A closed list of allowed shapes (all of one rank); `default` must be one of them."""

    shapes: tuple[tuple[int, ...], ...]
    default: tuple[int, ...] | None = None  # the first shape when not given

    def __post_init__(self):
        shapes = tuple(tuple(int(d) for d in s) for s in self.shapes)
        if not shapes:
            raise ValueError("enumerated shapes need at least one shape")
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"enumerated shapes must share one rank, got {list(shapes)}")
        object.__setattr__(self, "shapes", shapes)
        default = shapes[0] if self.default is None else tuple(int(d) for d in self.default)
        if default not in shapes:
            raise ValueError(f"default shape {default} is not one of the enumerated shapes {list(shapes)}")
        object.__setattr__(self, "default", default)

    @property
    def rank(self) -> int:
        return len(self.shapes[0])

    def allows(self, shape: Sequence[int]) -> bool:
        return tuple(shape) in self.shapes

    def fixed_dims(self) -> list[int | None]:
        return [col[0] if len(set(col)) == 1 else None for col in zip(*self.shapes)]

    def __str__(self) -> str:
        return " | ".join(str(list(s)) for s in self.shapes)


Flexibility = Ranges | Enumerated


@dataclass(frozen=True)
class Feature:
    """One input, output or state of a model.

    `shape` is None only for outputs whose rank is unknown. An input with symbolic dims needs a
    `flexibility`; `Feature.ranged` / `Feature.enumerated` build one with matching shape.
    """

    name: str
    dtype: dt.DType
    shape: tuple[Dim, ...] | None = ()
    flexibility: Flexibility | None = None
    description: str = ""

    def __post_init__(self):
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(d if isinstance(d, Symbol) else int(d) for d in self.shape))
        flex = self.flexibility
        if flex is not None:
            if self.shape is None or len(self.shape) != flex.rank:
                raise ValueError(f"feature {self.name!r}: shape {self.shape} does not have the rank "
                                 f"{flex.rank} of its flexibility {flex}")
            for d, fixed in zip(self.shape, flex.fixed_dims()):
                if isinstance(d, int) and d != fixed:
                    raise ValueError(f"feature {self.name!r}: dim {d} of shape {self.shape} varies or differs "
                                     f"in its flexibility {flex}")

    @staticmethod
    def ranged(name: str, dtype: dt.DType, bounds, default=None, description: str = "") -> "Feature":
        flex = Ranges(tuple(bounds), default)
        shape = tuple(d if d is not None else Symbol.fresh(f"{name}_d") for d in flex.fixed_dims())
        return Feature(name, dtype, shape, flex, description)

    @staticmethod
    def enumerated(name: str, dtype: dt.DType, shapes, default=None, description: str = "") -> "Feature":
        flex = Enumerated(tuple(shapes), default)
        shape = tuple(d if d is not None else Symbol.fresh(f"{name}_d") for d in flex.fixed_dims())
        return Feature(name, dtype, shape, flex, description)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    @property
    def default_shape(self) -> tuple[int, ...] | None:
        """The concrete shape written as the description's `shape` (None if unknown)."""
        if self.flexibility is not None:
            return self.flexibility.default
        return self.shape if self.is_static else None

    def allows(self, shape: Sequence[int]) -> bool:
        if self.flexibility is not None:
            return self.flexibility.allows(shape)
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            not isinstance(d, int) or d == s for d, s in zip(self.shape, shape))

    def shape_text(self) -> str:
        if self.flexibility is not None:
            return str(self.flexibility)
        return "unknown" if self.shape is None else str(list(self.shape))


@dataclass
class Metadata:
    author: str = ""
    license: str = ""
    version: str = ""
    short_description: str = ""
    user_defined: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelInterface:
    """Inputs (non-state, in function-input order), outputs (block output order), states, metadata.

    `input_tree` / `output_tree` are `treespec_dumps` strings of the original module's input and
    output pytrees, or None when the model did not come from a torch module.
    """

    inputs: list[Feature]
    outputs: list[Feature]
    states: list[Feature] = field(default_factory=list)
    metadata: Metadata = field(default_factory=Metadata)
    input_tree: str | None = None
    output_tree: str | None = None

    def input(self, name: str) -> Feature:
        return _named(self.inputs, name, "input")

    def output(self, name: str) -> Feature:
        return _named(self.outputs, name, "output")


def _named(features: list[Feature], name: str, kind: str) -> Feature:
    for f in features:
        if f.name == name:
            return f
    raise KeyError(f"no {kind} named {name!r}; the {kind}s are {[f.name for f in features]}")


def describe_function(fn, metadata: Metadata | None = None, flexibility: dict | None = None) -> ModelInterface:
    """The default interface of a MIL function: one feature per input, output and state.

    `flexibility` maps input names to a Ranges / Enumerated. An input with symbolic dims and no
    entry there gets an unbounded range (lower bound 1) for each symbolic dim.
    """
    flexibility = flexibility or {}
    inputs, states = [], []
    for var in fn.inputs:
        if isinstance(var.type, StateType):
            states.append(Feature(var.name, var.type.wrapped.dtype, var.type.wrapped.shape))
            continue
        ttype = _tensor_type(var.type, f"function input {var.name!r}")
        flex = flexibility.get(var.name)
        if flex is None and not ttype.is_static:
            flex = Ranges(tuple((d, d) if isinstance(d, int) else (1, None) for d in ttype.shape))
        inputs.append(Feature(var.name, ttype.dtype, ttype.shape, flex))
    outputs = [Feature(v.name, _tensor_type(v.type, f"function output {v.name!r}").dtype, v.type.shape)
               for v in fn.block.outputs]
    return ModelInterface(inputs, outputs, states, metadata or Metadata())


def _tensor_type(t, where: str) -> TensorType:
    if not isinstance(t, TensorType):
        raise PackageError(f"{where} has type {t}; Core ML model inputs and outputs must be tensors")
    return t


def check_io_rules(fn) -> None:
    """Rules Core ML puts on a model's function that a MIL program alone does not: at least one output,
    unique output names, and no value that is both an input and an output (the macOS compiler rejects
    that; an identity op fixes it). Checked when writing, not when reading someone else's package."""
    outputs = [v.name for v in fn.block.outputs]
    if not outputs:
        raise PackageError(f"function {fn.name!r} has no outputs; a Core ML model needs at least one")
    repeated = sorted({n for n in outputs if outputs.count(n) > 1})
    if repeated:
        raise PackageError(f"function {fn.name!r} returns {repeated} more than once; output names must be unique")
    passthrough = sorted(set(outputs) & {v.name for v in fn.inputs})
    if passthrough:
        raise PackageError(f"{passthrough} are both inputs and outputs of function {fn.name!r}; Core ML rejects "
                           "that (return an identity op's output instead)")


def check_against_function(interface: ModelInterface, fn) -> None:
    """The description must mirror the function: same names, order, dtypes and static dims."""
    plain = [v for v in fn.inputs if not isinstance(v.type, StateType)]
    states = [v for v in fn.inputs if isinstance(v.type, StateType)]
    pairs = [("input", interface.inputs, plain), ("output", interface.outputs, fn.block.outputs),
             ("state", interface.states, states)]
    for kind, features, vars_ in pairs:
        names = [f.name for f in features]
        var_names = [v.name for v in vars_]
        if names != var_names:
            raise PackageError(f"the description's {kind}s {names} do not match function {fn.name!r}'s "
                               f"{kind}s {var_names} (same names in the same order expected)")
        for feature, var in zip(features, vars_):
            ttype = var.type.wrapped if isinstance(var.type, StateType) else var.type
            if feature.dtype is not ttype.dtype:
                raise PackageError(f"{kind} {feature.name!r}: the description says {feature.dtype}, the "
                                   f"program has {ttype}")
            if feature.shape is None:
                continue
            if len(feature.shape) != len(ttype.shape) or any(
                    isinstance(a, int) != isinstance(b, int) or (isinstance(a, int) and a != b)
                    for a, b in zip(feature.shape, ttype.shape)):
                raise PackageError(f"{kind} {feature.name!r}: the description's shape {feature.shape_text()} "
                                   f"does not match the program's {ttype}")


# ------------------------------------------------------------------------------------ to proto ---


def interface_to_proto(interface: ModelInterface, target: Target) -> pb.ModelDescription:
    spec_version = int(target)
    desc = pb.ModelDescription()
    for feature in interface.inputs:
        if feature.shape is None or (not feature.is_static and feature.flexibility is None):
            raise PackageError(f"input {feature.name!r} has shape {feature.shape_text()}: a model input needs a "
                               "static shape or declared ranges / enumerated shapes")
        if not feature.shape:
            raise PackageError(f"input {feature.name!r} is a scalar; Core ML model inputs need rank 1 or more "
                               "(pass it with shape [1])")
        _array_to_proto(feature, desc.input.add(), spec_version, "input")
    for feature in interface.outputs:
        _array_to_proto(feature, desc.output.add(), spec_version, "output")
    for feature in interface.states:
        if spec_version < 9:
            raise PackageError(f"state {feature.name!r}: stateful models need iOS18 or newer (the target is "
                               f"{target.name})")
        if not feature.is_static or feature.dtype is not dt.fp16:
            raise PackageError(f"state {feature.name!r}: expected a static fp16 tensor, got {feature.dtype} "
                               f"{feature.shape_text()}")
        item = desc.state.add()
        item.name = feature.name
        item.shortDescription = feature.description
        array = item.type.stateType.arrayType
        array.shape.extend(feature.shape)
        array.dataType = _ARRAY_DTYPES[dt.fp16][0]
    _metadata_to_proto(interface, desc.metadata)
    return desc


def _array_to_proto(feature: Feature, item, spec_version: int, kind: str) -> None:
    code, since = _ARRAY_DTYPES.get(feature.dtype, (None, None))
    if code is None or spec_version < since:
        allowed = [d.name for d, (_, s) in _ARRAY_DTYPES.items() if s <= spec_version]
        raise PackageError(f"{kind} {feature.name!r} has dtype {feature.dtype}; Core ML model {kind}s at "
                           f"specification version {spec_version} must be one of {allowed}")
    item.name = feature.name
    item.shortDescription = feature.description
    array = item.type.multiArrayType
    array.dataType = code
    default = feature.default_shape
    if default is not None:
        array.shape.extend(default)
    flex = feature.flexibility
    if isinstance(flex, Ranges):
        for lo, hi in flex.bounds:
            size_range = array.shapeRange.sizeRanges.add()
            size_range.lowerBound = lo
            size_range.upperBound = -1 if hi is None else hi
    elif isinstance(flex, Enumerated):
        for shape in flex.shapes:
            array.enumeratedShapes.shapes.add().shape.extend(shape)


def _metadata_to_proto(interface: ModelInterface, meta: pb.Metadata) -> None:
    m = interface.metadata
    meta.author, meta.license = m.author, m.license
    meta.versionString, meta.shortDescription = m.version, m.short_description
    for key in (PYTREE_IN_KEY, PYTREE_OUT_KEY):
        if key in m.user_defined:
            raise PackageError(f"metadata key {key!r} is reserved for the pytree specs; set "
                               "ModelInterface.input_tree / output_tree instead")
    meta.userDefined.update(m.user_defined)
    if interface.input_tree is not None:
        meta.userDefined[PYTREE_IN_KEY] = interface.input_tree
    if interface.output_tree is not None:
        meta.userDefined[PYTREE_OUT_KEY] = interface.output_tree


# ---------------------------------------------------------------------------------- from proto ---


def interface_from_proto(desc: pb.ModelDescription, fn) -> ModelInterface:
    """Read a description; `fn` (the program's function) supplies the symbolic dims of each shape."""
    if len(desc.functions) or desc.defaultFunctionName:
        raise PackageError("multi-function model descriptions are not supported yet")
    vars_by_name = {v.name: v.type for v in fn.inputs}
    vars_by_name.update({v.name: v.type for v in fn.block.outputs})
    inputs = [_array_from_proto(item, vars_by_name.get(item.name), "input") for item in desc.input]
    outputs = [_array_from_proto(item, vars_by_name.get(item.name), "output") for item in desc.output]
    states = []
    for item in desc.state:
        if item.type.WhichOneof("Type") != "stateType":
            raise PackageError(f"state {item.name!r}: expected a stateType feature")
        array = item.type.stateType.arrayType
        states.append(Feature(item.name, _dtype_from_proto(array.dataType, item.name), tuple(array.shape),
                              description=item.shortDescription))
    meta = desc.metadata
    user = dict(sorted(meta.userDefined.items()))
    input_tree, output_tree = user.pop(PYTREE_IN_KEY, None), user.pop(PYTREE_OUT_KEY, None)
    metadata = Metadata(meta.author, meta.license, meta.versionString, meta.shortDescription, user)
    return ModelInterface(inputs, outputs, states, metadata, input_tree, output_tree)


def _dtype_from_proto(code: int, name: str) -> dt.DType:
    try:
        return _FROM_ARRAY_DTYPE[code]
    except KeyError:
        raise PackageError(f"feature {name!r}: unsupported multiarray dataType {code}") from None


def _array_from_proto(item, var_type, kind: str) -> Feature:
    arm = item.type.WhichOneof("Type")
    if arm != "multiArrayType":
        raise PackageError(f"{kind} {item.name!r} is a {arm} feature; only multiarray features are supported")
    array = item.type.multiArrayType
    dtype = _dtype_from_proto(array.dataType, item.name)
    program_shape = var_type.shape if isinstance(var_type, TensorType) else None
    flex_arm = array.WhichOneof("ShapeFlexibility")
    flex: Flexibility | None = None
    default = tuple(array.shape) or None
    if flex_arm == "shapeRange":
        bounds = tuple((r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges)
        flex = Ranges(bounds, default)
    elif flex_arm == "enumeratedShapes":
        flex = Enumerated(tuple(tuple(s.shape) for s in array.enumeratedShapes.shapes), default)
    if flex is not None:
        fixed = flex.fixed_dims()
        shape = tuple(f if f is not None else _symbol_at(program_shape, i, item.name) for i, f in enumerate(fixed))
    elif default is not None:
        shape = default
    else:
        shape = program_shape  # outputs whose shape is only known at run time
    return Feature(item.name, dtype, shape, flex, item.shortDescription)


def _symbol_at(program_shape, index: int, name: str) -> Dim:
    if program_shape is not None and index < len(program_shape) and isinstance(program_shape[index], Symbol):
        return program_shape[index]
    return Symbol.fresh(f"{name}_d")
