"""From an `nn.Module` or `ExportedProgram` to a lowered MIL function.

capture (torch.export) → decompose (torch's table, kept ops dry-run checked) → walk the graph.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.utils._sympy.numbers import int_oo

from ..errors import ConversionError
from ..mil import dtypes as dt
from ..mil.targets import Target
from ..progress import phase
from . import ops as _ops  # noqa: F401  (registers the lowerings)
from .decompositions import decomposition_table
from .dry_run import accepts
from .node_decompose import decompose_nodes
from .graph import DEFAULT_UPPER_BOUND, GraphInput, GraphLowerer, LoweredFunction
from .torchscript import capture_torchscript, is_torchscript

log = logging.getLogger(__name__)


@dataclass
class LoweredProgram:
    lowered: LoweredFunction
    in_spec: Any  # pytree spec of (args, kwargs)
    out_spec: Any
    user_input_leaves: list[int]  # which flattened input leaves feed the program, in order
    exported: ExportedProgram
    # Inputs the model mutates in place (torch.export's USER_INPUT_MUTATION): program output index →
    # program input index. The new value is an extra output, copied into the caller's tensor.
    input_mutations: dict[int, int] = field(default_factory=dict)


def capture(obj: Any, example_inputs: Any = None, dynamic_shapes: Any = None) -> ExportedProgram:
    if isinstance(obj, ExportedProgram):
        return obj
    if is_torchscript(obj):  # before nn.Module: a ScriptModule is one, but Dynamo cannot trace it
        if example_inputs is None:
            raise ConversionError("converting a TorchScript module needs example_inputs (a tuple of tensors)")
        return capture_torchscript(obj, *_split_inputs(example_inputs), dynamic_shapes)
    if isinstance(obj, torch.nn.Module):
        if example_inputs is None:
            raise ConversionError("exporting an nn.Module needs example_inputs (a tuple of tensors)")
        args, kwargs = _split_inputs(example_inputs)
        was_training = obj.training
        obj.eval()
        try:
            return torch.export.export(obj, args, kwargs, dynamic_shapes=dynamic_shapes)
        finally:
            obj.train(was_training)
    raise ConversionError(f"cannot convert a {type(obj).__name__}: expected a torch.export.ExportedProgram, "
                          "an nn.Module with example_inputs, or a TorchScript module")


def _split_inputs(example_inputs: Any) -> tuple[tuple, dict]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, list):
        return tuple(example_inputs), {}
    if isinstance(example_inputs, tuple) and len(example_inputs) == 2 and isinstance(example_inputs[1], dict) \
            and isinstance(example_inputs[0], tuple):
        return example_inputs
    return tuple(example_inputs), {}


@dataclass
class Decomposed:
    """A program after decomposition: `graph` to lower, `ep` for its signature, state and shapes, and
    the tensors that decompositions created (fed to the extra placeholders of `graph`)."""

    ep: ExportedProgram
    graph: torch.fx.Graph
    constants: dict[str, torch.Tensor]


def decompose(ep: ExportedProgram, target: Target, float_dtype: dt.DType) -> Decomposed:
    def dry_run(op, args, kwargs):
        return accepts(op, args, kwargs, mil_target=target, float_dtype=float_dtype)

    constants = _constant_tensors(ep)

    def accepts_node(node):
        return accepts(node.target, tuple(node.args), dict(node.kwargs), mil_target=target,
                       float_dtype=float_dtype, constants=constants)

    table = decomposition_table(dry_run)
    with warnings.catch_warnings():
        # torch's own pytree code warns about its deprecated LeafSpec check during decomposition;
        # it is not actionable for our users.
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        fast = decompose_nodes(ep, table, accepts_node)
        if fast is not None:
            log.info("decomposed %d node(s) one by one: %s", sum(fast.traced.values()), dict(fast.traced))
            return Decomposed(ep, fast.graph, fast.constants)
        ep = ep.run_decompositions(table)
        return Decomposed(ep, ep.graph, {})


def _constant_tensors(ep: ExportedProgram) -> dict[str, torch.Tensor]:
    """Placeholder name → tensor for the parameters, buffers and constants of `ep`."""
    out = {}
    for spec in ep.graph_signature.input_specs:
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            value = ep.state_dict.get(spec.target)
            if value is None:
                value = ep.constants.get(spec.target)
            if isinstance(value, torch.Tensor):
                out[spec.arg.name] = value
    return out


def lower_exported(ep: ExportedProgram, *, target: Target, float_dtype: dt.DType,
                   input_names=(), output_names=()) -> LoweredProgram:
    with phase("decompose"):
        decomposed = decompose(ep, target, float_dtype)
    ep, graph = decomposed.ep, decomposed.graph
    sig = ep.graph_signature
    state = ep.state_dict
    feeds: dict[str, GraphInput] = {}
    user_index = 0
    leaves: list[int] = []
    for spec in sig.input_specs:
        name = spec.arg.name
        if spec.kind == InputKind.USER_INPUT:
            node = _placeholder(graph, name)
            if isinstance(node.meta.get("val"), torch.Tensor):
                feeds[name] = GraphInput(name, user_index=len(leaves))
                leaves.append(user_index)
            else:
                feeds[name] = GraphInput(name, value=torch.tensor(node.meta.get("val")))
            user_index += 1
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            feeds[name] = GraphInput(name, value=state[spec.target] if spec.target in state
                                     else ep.constants[spec.target])
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            feeds[name] = GraphInput(name, value=ep.constants[spec.target])
        elif spec.kind == InputKind.TOKEN:
            # Effect tokens only order side effects (e.g. linalg's runtime error checks); they carry
            # no data, so they are neither model inputs nor outputs.
            feeds[name] = GraphInput(name, token=True)
        else:
            raise ConversionError(f"graph input {name!r} of kind {spec.kind.name} is not supported")
    mutations, output_names = _input_mutations(sig, feeds, input_names, output_names)
    for name, value in decomposed.constants.items():
        feeds[name] = GraphInput(name, value=value)
    lowerer = GraphLowerer(graph, feeds, target=target, float_dtype=float_dtype,
                           input_names=input_names, output_names=output_names, ranges=_ranges(ep))
    with phase("lower"):
        lowered = lowerer.lower()
    return LoweredProgram(lowered, ep.call_spec.in_spec, ep.call_spec.out_spec, leaves, ep, mutations)


def _input_mutations(sig, feeds: dict[str, GraphInput], input_names, output_names
                     ) -> tuple[dict[int, int], list[str] | tuple]:
    """Which program outputs are new values of user inputs (output index → input index), and the
    output names: a mutated input's new value is named after the input, and the user's output names
    (or output_0, output_1, ...) go to the model's own outputs. Other mutations are refused."""
    mutations: dict[int, int] = {}
    names: list[str] = []
    user_outputs = 0
    for spec in (s for s in sig.output_specs if s.kind != OutputKind.TOKEN):
        if spec.kind == OutputKind.USER_INPUT_MUTATION:
            index = feeds[spec.target].user_index
            mutations[len(names)] = index
            names.append(f"{input_names[index] if index < len(input_names) else spec.target}_updated")
        elif spec.kind == OutputKind.USER_OUTPUT:
            names.append(output_names[user_outputs] if user_outputs < len(output_names) else f"output_{user_outputs}")
            user_outputs += 1
        else:
            raise ConversionError(
                f"the model mutates {spec.kind.name.lower().replace('_', ' ')} {spec.target!r} in forward; "
                "Core ML programs are functional (stateful models need iOS18 states, not supported yet)")
    return mutations, (names if mutations else output_names)


def _placeholder(graph: torch.fx.Graph, name: str) -> torch.fx.Node:
    for node in graph.nodes:
        if node.op == "placeholder" and node.name == name:
            return node
    raise ConversionError(f"no placeholder named {name!r}")


def _ranges(ep: ExportedProgram) -> dict[str, tuple[int, int]]:
    """Symbol name → (lo, hi) from export's range constraints; unbounded gets a finite default."""
    out = {}
    for sym, vr in ep.range_constraints.items():
        lo = int(vr.lower) if _is_finite(vr.lower) else 1
        hi = int(vr.upper) if _is_finite(vr.upper) else DEFAULT_UPPER_BOUND
        if not _is_finite(vr.upper):
            log.info("dimension %s has no upper bound; using %d (set Dim(max=...) to change it)",
                     sym, DEFAULT_UPPER_BOUND)
        out[str(sym)] = (max(lo, 1), max(hi, lo, 1))
    return out


def _is_finite(bound) -> bool:
    # torch's int_oo (the bound of an unbounded size) says is_finite=True, so test for it by value.
    return bool(bound.is_finite) and bound not in (int_oo, -int_oo)
