"""Decompose only the nodes no lowering takes, instead of re-tracing the whole program.

`ExportedProgram.run_decompositions` re-traces every node through functionalization and AOT dispatch,
tens of milliseconds per node, although most nodes of a real model already have a lowering. Here the
graph is copied; a node whose lowering accepts it (the same dry run the decomposition table uses) stays
as it is, and any other node is traced alone with `make_fx` under the program's own fake mode and the
same decomposition table, and its small graph is spliced in where the node was. What comes out is what
the whole-program decomposition would give for those nodes, so lowering it gives the same program.

The walk models a functional graph of aten ops. Anything else makes `decompose_nodes` return None and
the caller falls back to `run_decompositions`: higher-order ops and other Python callables without a
lowering (vmap, cond, wrap_with_set_grad_enabled, ...), `get_attr` nodes, mutation outputs or effect
tokens in the signature, symbolic-int arguments a decomposition would need, and in-place ops other
than on a fresh, unaliased intermediate (which are rewritten to their functional form here).
"""

from __future__ import annotations

import contextlib
import logging
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.fx
import torch.utils._pytree as pytree
from torch._dispatch.python import enable_python_dispatcher
from torch._guards import detect_fake_mode
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx.experimental.proxy_tensor import make_fx

from .registry import REGISTRY, bind_arguments

log = logging.getLogger(__name__)
aten = torch.ops.aten

_INPUT_KINDS = (InputKind.USER_INPUT, InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
_MAX_DEPTH = 4  # nested re-traces of ops a decomposition left undecomposed
# Where a node came from in the user's code: spliced nodes inherit it from the node they replace.
_SOURCE_META = ("stack_trace", "nn_module_stack", "source_fn_stack")
# In-place ops whose only effect here is returning their input.
_IDENTITY_IN_PLACE = (aten.detach_.default,)


@dataclass
class NodeDecomposition:
    """The decomposed graph (same placeholders as the program's, plus one per constant a
    decomposition created, listed in `constants`) and how many nodes were traced."""

    graph: torch.fx.Graph
    constants: dict[str, torch.Tensor] = field(default_factory=dict)
    traced: Counter = field(default_factory=Counter)  # op name → nodes traced


class _Fallback(Exception):
    """The walk does not model this program; use the whole-program decomposition."""


def decompose_nodes(ep: ExportedProgram, table: dict, accepts_node: Callable[[torch.fx.Node], bool]
                    ) -> NodeDecomposition | None:
    try:
        _check_signature(ep)
        with contextlib.ExitStack() as scope:
            return _Walk(ep, table, accepts_node, scope).run()
    except _Fallback as why:
        log.info("decomposing the whole program (%s)", why)
        return None


def _tracing_tables(table: dict):
    """Split `table` as `run_decompositions` does: composite-implicit ops (which the dispatcher would
    decompose, or run by a backend kernel, before any table is consulted) get their entry installed as
    the composite kernel while tracing; the others stay a make_fx table."""
    try:
        from torch.export._trace import _ignore_backend_decomps
        from torch.export.exported_program import (_override_composite_implicit_decomp,
                                                   _split_decomp_table_to_cia_and_python_decomp)
    except ImportError as e:  # private helpers of torch.export; absent in other releases
        raise _Fallback(f"torch.export lacks {e.name}") from None
    composite, python_table = _split_decomp_table_to_cia_and_python_decomp(dict(table))
    scope = contextlib.ExitStack()
    # Backend-specific kernels (mkldnn's RNN, ...) would otherwise replace portable decompositions.
    scope.enter_context(_ignore_backend_decomps())
    scope.enter_context(_override_composite_implicit_decomp(composite))
    # The overrides are Python kernels: only the Python dispatcher consults them.
    scope.enter_context(enable_python_dispatcher())
    return scope, python_table


def _check_signature(ep: ExportedProgram) -> None:
    sig = ep.graph_signature
    for spec in sig.input_specs:
        if spec.kind not in _INPUT_KINDS:
            raise _Fallback(f"input {spec.arg.name} of kind {spec.kind.name}")
    for spec in sig.output_specs:
        if spec.kind != OutputKind.USER_OUTPUT:
            raise _Fallback(f"output of kind {spec.kind.name}")


class _Walk:
    def __init__(self, ep: ExportedProgram, table: dict, accepts_node: Callable[[torch.fx.Node], bool],
                 scope: contextlib.ExitStack):
        self.table = table
        self.scope = scope
        self.python_table: dict | None = None  # set up at the first node that needs tracing
        self.accepts_node = accepts_node
        self.graph = torch.fx.Graph()
        copies: dict[torch.fx.Node, torch.fx.Node] = {}
        value, output = self.graph.graph_copy(ep.graph, copies, return_output_node=True)
        self.graph.output(value).meta.update(output.meta)
        for old, new in copies.items():
            # The graph signature names placeholders; FX renames copies of names like `input`.
            if old.op == "placeholder":
                new.name = old.name
        self.result = NodeDecomposition(self.graph)
        self.fake_mode = None

    def run(self) -> NodeDecomposition:
        for node in list(self.graph.nodes):
            if node.op == "get_attr":
                raise _Fallback(f"get_attr node {node.name}")
            if node.op == "call_function":
                self._visit(node)
        self.graph.eliminate_dead_code()
        return self.result

    def _visit(self, node: torch.fx.Node) -> None:
        target = node.target
        if not isinstance(target, torch._ops.OpOverload):
            if target is operator.getitem or target in REGISTRY:
                return
            raise _Fallback(f"{getattr(target, '__name__', target)} has no lowering")
        if _updates_running_stats(node):
            raise _Fallback(f"{node.name} ({target}) updates running statistics in place")
        if target._schema.is_mutable:
            if self._functionalize(node):
                return  # the node is gone
            target = node.target
        if target in REGISTRY and self.accepts_node(node):
            return
        self._decompose(node)

    # -- in-place ops on fresh tensors → functional ops ------------------------------------------
    def _functionalize(self, node: torch.fx.Node) -> bool:
        """Rewrite the in-place `node` to its functional op; True when it was removed instead."""
        target = node.target
        if target in _IDENTITY_IN_PLACE:
            node.replace_all_uses_with(node.args[0])
            self.graph.erase_node(node)
            return True
        written = [a for a in target._schema.arguments if a.alias_info is not None and a.alias_info.is_write]
        if len(written) != 1 or written[0].name != "self" or not target._schema.name.endswith("_") \
                or len(target._schema.returns) != 1:
            raise _Fallback(f"in-place op {target}")
        base = node.args[0]
        if not _is_fresh(base):
            raise _Fallback(f"{target} writes to {base}, which is not a fresh intermediate")
        functional = _functional_variant(target)
        if functional is None or (functional not in REGISTRY and functional not in self.table):
            raise _Fallback(f"{target} has no functional variant we lower or decompose")
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        for user in list(base.users):
            if user is not node and order[user] > order[node]:
                user.replace_input_with(base, node)
        node.target = functional
        return False

    # -- tracing one node through the decomposition table ----------------------------------------
    def _decompose(self, node: torch.fx.Node, depth: int = 0) -> None:
        flat, spec = pytree.tree_flatten((node.args, node.kwargs))
        slots, examples = [], []
        for i, a in enumerate(flat):
            if isinstance(a, torch.fx.Node):
                val = a.meta.get("val")
                if not isinstance(val, torch.Tensor):
                    raise _Fallback(f"{node.name} takes the non-tensor value {a.name}")
                if any(not isinstance(d, int) for d in val.shape):
                    # Traced outside symbolic mode, a decomposition could bake a symbolic size in.
                    raise _Fallback(f"{node.name} ({node.target}) has symbolic sizes and no lowering")
                slots.append(i)
                examples.append(val)
        if self.fake_mode is None:
            self.fake_mode = detect_fake_mode(examples) or _program_fake_mode(self.graph)
        if self.fake_mode is None:
            raise _Fallback("no fake tensor mode to trace in")
        if self.python_table is None:
            override, self.python_table = _tracing_tables(self.table)
            self.scope.enter_context(override)
        target = node.target

        def call(*tensors):
            args = list(flat)
            for slot, t in zip(slots, tensors):
                args[slot] = t
            a, kw = pytree.tree_unflatten(args, spec)
            return target(*a, **kw)

        try:
            with self.fake_mode:
                gm = make_fx(call, decomposition_table=self.python_table, tracing_mode="real")(*examples)
        except Exception as e:  # e.g. a decomposition that reads tensor data: torch's path handles it
            raise _Fallback(f"tracing {target} alone failed ({type(e).__name__})") from e
        self.result.traced[str(target)] += 1
        calls = [n for n in gm.graph.nodes if n.op == "call_function"]
        if len(calls) == 1 and calls[0].target is target:
            return  # nothing to decompose: the node stays and is reported if no lowering takes it
        for copy in self._splice(node, gm, [flat[i] for i in slots]):
            # Ops a composite's kernel calls can escape the table; each gets its own trace.
            if depth < _MAX_DEPTH and isinstance(copy.target, torch._ops.OpOverload) \
                    and not (copy.target in REGISTRY and self.accepts_node(copy)):
                self._decompose(copy, depth + 1)

    def _splice(self, node: torch.fx.Node, gm: torch.fx.GraphModule, operands: list) -> list:
        """Replace `node` by `gm`'s nodes; returns the copies of its call nodes still in the graph."""
        env: dict[torch.fx.Node, object] = {}
        placeholders = iter(operands)
        outputs = None
        with self.graph.inserting_before(node):
            for sub in gm.graph.nodes:
                if sub.op == "placeholder":
                    env[sub] = next(placeholders)
                elif sub.op == "get_attr":
                    env[sub] = self._constant(node, getattr(gm, sub.target), sub.meta)
                elif sub.op == "call_function":
                    env[sub] = copy = self.graph.node_copy(sub, lambda n: env[n])
                    for key in _SOURCE_META:  # errors name the module and source line of the node
                        if key in node.meta and key not in copy.meta:
                            copy.meta[key] = node.meta[key]
                elif sub.op == "output":
                    outputs = sub.args[0]
        mapped = pytree.tree_map(lambda x: env[x] if isinstance(x, torch.fx.Node) else x, outputs)
        val = node.meta.get("val")
        if isinstance(val, (tuple, list)):
            if not isinstance(mapped, (tuple, list)) or len(mapped) != len(val):
                raise _Fallback(f"the decomposition of {node.target} changes its outputs")
            for user in list(node.users):
                if user.target is not operator.getitem:
                    raise _Fallback(f"{node.name} is used whole by {user.name}")
                user.replace_all_uses_with(mapped[user.args[1]])
                self.graph.erase_node(user)
        else:
            if isinstance(mapped, (tuple, list)):
                mapped = mapped[0] if len(mapped) == 1 else None
            if not isinstance(mapped, torch.fx.Node):
                raise _Fallback(f"the decomposition of {node.target} returns no single tensor")
            node.replace_all_uses_with(mapped)
        self.graph.erase_node(node)
        # Decompositions are traced without functionalization: rewrite their in-place ops here.
        for sub, copy in env.items():
            if sub.op == "call_function" and isinstance(copy.target, torch._ops.OpOverload) \
                    and copy.target._schema.is_mutable:
                self._functionalize(copy)
        return [c for sub, c in env.items() if sub.op == "call_function" and c.graph is self.graph
                and c.target is not operator.getitem and not c._erased]

    def _constant(self, node: torch.fx.Node, value: torch.Tensor, meta: dict) -> torch.fx.Node:
        """A tensor a decomposition created: a new placeholder fed with its value."""
        name = f"_decomposition_constant_{len(self.result.constants)}"
        first = next(iter(self.graph.nodes))
        with self.graph.inserting_before(first):
            placeholder = self.graph.placeholder(name)
        placeholder.meta.update(meta)
        self.result.constants[placeholder.name] = value
        return placeholder


# Norms whose schema hides an in-place update of running statistics in training mode: name of the
# training flag in their schema. Only functionalization (the whole-program path) exposes the update.
_STAT_UPDATING = {aten.batch_norm.default: "training", aten.native_batch_norm.default: "training",
                  aten._batch_norm_impl_index.default: "training",
                  aten.instance_norm.default: "use_input_stats"}


def _updates_running_stats(node: torch.fx.Node) -> bool:
    flag = _STAT_UPDATING.get(node.target)
    if flag is None:
        return False
    bound = bind_arguments(node.target, node.args, node.kwargs)
    return bool(bound[flag]) and bound.get("running_mean") is not None


def _is_fresh(base) -> bool:
    """An intermediate that owns its storage: made by a non-aliasing op (or one output of such an op)
    and not viewed by anyone."""
    producer = base
    if isinstance(base, torch.fx.Node) and base.op == "call_function" and base.target is operator.getitem:
        producer = base.args[0]
    if not isinstance(producer, torch.fx.Node) or producer.op != "call_function" \
            or not isinstance(producer.target, torch._ops.OpOverload):
        return False
    if any(r.alias_info is not None for r in producer.target._schema.returns):
        return False
    for user in base.users:
        if isinstance(user.target, torch._ops.OpOverload) and \
                any(r.alias_info is not None for r in user.target._schema.returns) and \
                not user.target._schema.is_mutable:
            return False  # a view of it would see the write
    return True


def _functional_variant(target: torch._ops.OpOverload):
    packet = getattr(aten, target._schema.name.split("::")[-1][:-1], None)
    if packet is None:
        return None
    return getattr(packet, target._overloadname, None)


def _program_fake_mode(graph: torch.fx.Graph):
    vals = [n.meta.get("val") for n in graph.nodes if n.op == "placeholder"]
    return detect_fake_mode([v for v in vals if isinstance(v, torch.Tensor)])
