"""Walk an ATen FX graph (from torch.export or aot_autograd) and build one MIL function.

Inputs, parameters, buffers and lifted constants become function inputs or consts; each call node goes
through its registered lowering; outputs get unique names and I/O-legal dtypes (Core ML programs take
and return fp32/int32 tensors, fp16 from iOS16). Every node that cannot be lowered is collected, so
the error lists all of them at once.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.fx

from ..errors import ConversionError
from ..mil import dtypes as dt
from ..mil.builder import Builder, NameScope, sanitize_name
from ..mil.program import Block, Function, Var
from ..mil.targets import Target
from ..mil.types import Symbol, TensorType
from .context import LoweringContext, Unsupported
from .registry import REGISTRY, bind_arguments
from .unsupported import UnsupportedNode, UnsupportedOpsError, describe_node

log = logging.getLogger(__name__)


@dataclass
class IOInfo:
    """One model input or output: its MIL name/type and the torch dtype to restore on the way out."""

    name: str
    type: TensorType
    torch_dtype: torch.dtype
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # flexible dims: axis → (lo, hi)


@dataclass
class GraphInput:
    """How a graph placeholder is fed: a user input (by position), a constant tensor, or an effect token
    (torch.export threads one through ops with side effects, e.g. linalg's error checks; it holds no data)."""

    node_name: str
    user_index: int | None = None
    value: torch.Tensor | None = None
    token: bool = False


@dataclass
class LoweredFunction:
    function: Function
    inputs: list[IOInfo]
    outputs: list[IOInfo]


_IO_FLOAT = {Target.iOS15: (dt.fp32,)}


class GraphLowerer:
    def __init__(self, graph: torch.fx.Graph, feeds: dict[str, GraphInput], *, target: Target,
                 float_dtype: dt.DType, input_names: Sequence[str] | None = None,
                 output_names: Sequence[str] | None = None, ranges: dict[str, tuple[int, int]] | None = None,
                 function_name: str = "main"):
        self.graph = graph
        self.feeds = feeds
        self.target = target
        self.float_dtype = float_dtype
        self.input_names = list(input_names or [])
        self.output_names = list(output_names or [])
        self.ranges = ranges or {}
        self.function_name = function_name
        self.env: dict[torch.fx.Node, Any] = {}
        self.failures: list[UnsupportedNode] = []
        self.names = NameScope()
        self.symbols: dict[str, Symbol] = {}

    # -- entry ----------------------------------------------------------------------------------
    def lower(self) -> LoweredFunction:
        self._precheck()
        user_nodes = [n for n in self.graph.nodes if n.op == "placeholder"
                      and self.feeds[n.name].user_index is not None]
        user_nodes.sort(key=lambda n: self.feeds[n.name].user_index)
        io_inputs = [self._input_info(n, i) for i, n in enumerate(user_nodes)]
        fn = Function(self.function_name, [], Block(), self.target)
        for info in io_inputs:
            fn.inputs.append(Var(self.names.reserve(info.name), info.type))
        b = Builder(fn.block, self.target, self.names)
        self.b = b
        for node, var, info in zip(user_nodes, fn.inputs, io_inputs):
            compute = self._compute_type(var.type.dtype, info.torch_dtype)
            self.env[node] = var if compute is var.type.dtype else b.op("cast", x=var, dtype=compute.name,
                                                                             name=var.name + "_cast")
        for node in self.graph.nodes:
            if node.op == "placeholder" and node not in self.env:
                self.env[node] = self._constant(node)
            elif node.op == "get_attr":
                self.env[node] = _submodule(node)
            elif node.op == "call_function":
                self._lower_node(node)
            elif node.op == "output":
                outputs = self._outputs(node)
        if self.failures:
            raise UnsupportedOpsError(self.failures)
        fn.block.outputs = [v for v, _ in outputs]
        return LoweredFunction(fn, io_inputs, [info for _, info in outputs])

    # -- checks ---------------------------------------------------------------------------------
    def _precheck(self, graph: torch.fx.Graph | None = None) -> None:
        for node in (graph or self.graph).nodes:
            if node.op == "call_function" and node.target is not operator.getitem \
                    and REGISTRY.get(_effectful_op(node)) is None:
                op = _effectful_op(node)
                reason = "no lowering for this op" if op is node.target else f"no lowering for the effectful op {op}"
                self.failures.append(UnsupportedNode.from_node(node, reason))
            elif node.op == "get_attr" and isinstance(sub := _submodule(node), torch.fx.GraphModule):
                self._precheck(sub.graph)  # a cond branch: its ops are reported with the rest

    # -- subgraphs (torch.cond branches) --------------------------------------------------------
    def lower_subgraph(self, gm: torch.fx.GraphModule, operands: Sequence[Any], b: Builder) -> list[Any]:
        """Lower `gm`'s nodes into the block `b` builds, its placeholders bound to `operands`; returns
        its output values (_MISSING where a node failed; those failures are already recorded)."""
        outer, self.b = self.b, b
        try:
            placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
            self.env.update(zip(placeholders, operands))
            for node in gm.graph.nodes:
                if node.op == "get_attr":
                    self.env[node] = _submodule(node)
                elif node.op == "call_function":
                    self._lower_node(node)
                elif node.op == "output":
                    (values,) = node.args
        finally:
            self.b = outer
        flat = list(values) if isinstance(values, (list, tuple)) else [values]
        return [self.env.get(v, _MISSING) if isinstance(v, torch.fx.Node) else v for v in flat]

    # -- inputs ---------------------------------------------------------------------------------
    def _input_info(self, node: torch.fx.Node, index: int) -> IOInfo:
        meta = node.meta.get("val")
        if not isinstance(meta, torch.Tensor):
            raise ConversionError(f"input {node.name!r} is a {type(meta).__name__}; only tensor inputs "
                                  "can be model inputs (export specializes other values)")
        name = self.input_names[index] if index < len(self.input_names) else node.name
        shape, ranges = [], {}
        for axis, s in enumerate(meta.shape):
            if _is_static(s):
                shape.append(int(s))
            else:
                sym = self.symbols.setdefault(str(s), Symbol(str(s)))
                shape.append(sym)
                ranges[axis] = self.ranges.get(str(s), (1, DEFAULT_UPPER_BOUND))
        return IOInfo(sanitize_name(name), TensorType(self._io_dtype(meta.dtype), tuple(shape)),
                      meta.dtype, ranges)

    def _io_dtype(self, torch_dtype: torch.dtype) -> dt.DType:
        if torch_dtype.is_floating_point:
            if torch_dtype == torch.float16 and self.target >= Target.iOS16:
                return dt.fp16
            return dt.fp32
        return dt.int32  # ints and bools cross the model boundary as int32

    def _compute_type(self, io_dtype: dt.DType, torch_dtype: torch.dtype) -> dt.DType:
        # A bool input crosses the boundary as int32 but computes as bool, so logical ops see bools.
        if torch_dtype == torch.bool:
            return dt.bool_
        return self.float_dtype if io_dtype.is_float else io_dtype

    def _constant(self, node: torch.fx.Node) -> Var:
        feed = self.feeds.get(node.name)
        if feed is not None and feed.token:
            return _TOKEN
        if feed is None or feed.value is None:
            raise ConversionError(f"graph input {node.name!r} is neither a user input nor a constant")
        value = feed.value.detach()
        ctx = LoweringContext(self.b, self.float_dtype, node)
        mil = ctx.mil_dtype(value.dtype)
        if value.dtype == torch.int64:
            value = value.to(torch.int32)
        if value.dtype == torch.float32 and mil is dt.fp16:
            # Keep the fp32 weights shared with the model; the writer converts them one at a time.
            return self.b.const(value, mil, name=node.name, defer_cast=True)
        return self.b.const(value.to(mil.torch) if mil.torch else value, mil, name=node.name)

    # -- nodes ----------------------------------------------------------------------------------
    def _lower_node(self, node: torch.fx.Node) -> None:
        if node.target is operator.getitem:
            src, idx = node.args
            # Usually a multi-output node; decompositions also index literal lists of nodes.
            value = torch.fx.node.map_arg(src, lambda n: self.env.get(n, _MISSING))
            self.env[node] = _MISSING if value is _MISSING else value[idx]
            return
        target, args = _effectful_op(node), node.args
        if target is not node.target:
            args = node.args[2:]  # with_effects(token, op, *args, **kwargs): the op's own arguments
        entry = REGISTRY.get(target)
        if entry is None:
            self.env[node] = _MISSING
            return
        lookup = lambda n: self.env.get(n, _MISSING)  # noqa: E731
        args = torch.fx.node.map_arg(args, lookup)
        kwargs = torch.fx.node.map_arg(node.kwargs, lookup)
        if _has_missing(args) or _has_missing(kwargs):
            self.env[node] = _MISSING  # depends on an unsupported node; that one is reported
            return
        ctx = LoweringContext(self.b, self.float_dtype, node)
        ctx.lower_subgraph = self.lower_subgraph
        try:
            bound = bind_arguments(target, args, kwargs)
            result = entry.fn(ctx, **bound)
        except Unsupported as e:
            self.failures.append(UnsupportedNode.from_node(node, str(e)))
            result = _MISSING
        except Exception as e:  # a lowering bug or a MIL type error: report it against the node
            raise ConversionError(f"lowering {describe_node(node)} failed: {type(e).__name__}: {e}") from e
        if result is not _MISSING and target is not node.target:
            # with_effects returns (token, *the op's outputs); the token carries no data.
            result = (_TOKEN, *(result if isinstance(result, tuple) else () if result is None else (result,)))
        elif result is not _MISSING:
            _check_result(node, result, ctx)
        self.env[node] = result

    # -- outputs --------------------------------------------------------------------------------
    def _outputs(self, node: torch.fx.Node) -> list[tuple[Var, IOInfo]]:
        (values,) = node.args
        flat = list(values) if isinstance(values, (list, tuple)) else [values]
        flat = [v for v in flat if not (isinstance(v, torch.fx.Node) and self.env.get(v) is _TOKEN)]
        results, used = [], set()
        fn_inputs = set(id(v) for v in self.env.values() if isinstance(v, Var) and v.op is None)
        for i, out_node in enumerate(flat):
            var = self.env.get(out_node, _MISSING) if isinstance(out_node, torch.fx.Node) else None
            if var is _MISSING or not isinstance(var, Var):
                if self.failures:
                    continue
                raise ConversionError(f"output {i} ({out_node}) is not a tensor computed by the graph")
            meta = out_node.meta.get("val")
            torch_dtype = meta.dtype if isinstance(meta, torch.Tensor) else torch.float32
            io = self._io_dtype(torch_dtype)
            name = sanitize_name(self.output_names[i] if i < len(self.output_names) else f"output_{i}")
            if var.dtype is not io:
                var = self.b.op("cast", x=var, dtype=io.name, name=name)
            elif id(var) in used or id(var) in fn_inputs or var.is_const:
                # Core ML rejects a tensor that is both input and output, or returned twice.
                var = self.b.op("identity", x=var, name=name)
            else:
                var = self._rename(var, name)
            used.add(id(var))
            results.append((var, IOInfo(var.name, var.type, torch_dtype)))
        return results

    def _rename(self, var: Var, name: str) -> Var:
        """Give an op-produced output its model output name, without an extra op when possible."""
        if var.name == name:
            return var
        if var.op is not None and var.op.block is self.b.block and self.names.try_reserve(name):
            var.name = name
            return var
        return self.b.op("identity", x=var, name=name)


DEFAULT_UPPER_BOUND = 8192
_MISSING = object()  # env value of a node that could not be lowered
_TOKEN = object()  # env value of an effect token: it only orders side effects, which MIL has none of
_WITH_EFFECTS = torch.ops.higher_order.with_effects


def _effectful_op(node: torch.fx.Node) -> Any:
    """The op a node calls: for with_effects(token, op, ...) the wrapped op, which is lowered (or
    refused) like any other; Core ML programs have no side effects to order."""
    return node.args[1] if node.target is _WITH_EFFECTS else node.target


def _submodule(node: torch.fx.Node) -> Any:
    """The object a get_attr node names (a torch.cond branch is a GraphModule attribute)."""
    obj = node.graph.owning_module
    for part in str(node.target).split("."):
        obj = getattr(obj, part)
    return obj


def _is_static(s) -> bool:
    if isinstance(s, int):
        return True
    return getattr(s, "node", None) is not None and s.node.maybe_as_int() is not None


def _has_missing(x) -> bool:
    if isinstance(x, (list, tuple)):
        return any(_has_missing(v) for v in x)
    if isinstance(x, dict):
        return any(_has_missing(v) for v in x.values())
    return x is _MISSING


def _check_result(node: torch.fx.Node, result: Any, ctx: LoweringContext) -> None:
    """Compare what a lowering built with the FX metadata: a mismatch is a lowering bug."""
    meta = node.meta.get("val")
    pairs = list(zip(result, meta)) if isinstance(result, tuple) and isinstance(meta, (tuple, list)) \
        else [(result, meta)]
    for var, m in pairs:
        if not isinstance(var, Var) or not isinstance(m, torch.Tensor) or not isinstance(var.type, TensorType):
            continue
        expected = [int(s) if _is_static(s) else None for s in m.shape]
        got = list(var.shape)
        bad_rank = len(expected) != len(got)
        bad_dim = any(e is not None and isinstance(g, int) and e != g for e, g in zip(expected, got))
        if bad_rank or bad_dim:
            raise ConversionError(f"lowering {describe_node(node)} produced shape {tuple(got)}, "
                                  f"torch says {tuple(m.shape)}")
