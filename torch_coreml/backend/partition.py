"""Which nodes go to Core ML: support = a dry run of the real lowering on each node.

`CoreMLSupport.is_node_supported` asks `try_lowering` (the very function a conversion calls, on the
node's fake-tensor metadata), so the partitioner never delegates a node the lowering then rejects.
Refusals keep their reason for the report. `CoreMLPartitioner` is torch's capability partitioner
with `min_block_size`: regions with fewer compute nodes stay in PyTorch.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner, Partition
from torch.fx.passes.operator_support import OperatorSupportBase

from ..lowering.dry_run import try_lowering
from ..lowering.unsupported import UnsupportedNode, op_name
from .options import BackendOptions, node_op_keys

TORCH_EXECUTED = "listed in torch_executed_ops"
NOT_TENSOR = "size arithmetic for ops that run in PyTorch"
TOO_SMALL = "region smaller than min_block_size"


class CoreMLSupport(OperatorSupportBase):
    def __init__(self, opts: BackendOptions):
        self.opts = opts
        self.reasons: dict[torch.fx.Node, str] = {}  # refused node → why
        self._cache: dict[torch.fx.Node, bool] = {}

    def is_node_supported(self, submodules, node: torch.fx.Node) -> bool:
        if node not in self._cache:
            reason = self._refusal(node)
            self._cache[node] = not reason
            if reason:
                self.reasons[node] = reason
        return self._cache[node]

    def _refusal(self, node: torch.fx.Node) -> str:
        if node.op != "call_function":
            return f"{node.op} node"
        if node.target is operator.getitem:
            # An element of a multi-output op goes wherever the op goes.
            src = node.args[0]
            ok = isinstance(src, torch.fx.Node) and self.is_node_supported(None, src)
            return "" if ok else "element of an op that runs in PyTorch"
        if node_op_keys(node.target) & self.opts.torch_executed_ops:
            return TORCH_EXECUTED
        conv = self.opts.conversion
        ok, reason = try_lowering(node.target, node.args, node.kwargs, mil_target=conv.target,
                                  float_dtype=conv.float_dtype)
        return "" if ok else reason

    def force_eager(self, node: torch.fx.Node, reason: str) -> None:
        self._cache[node] = False
        self.reasons[node] = reason

    def unsupported_nodes(self, gm: torch.fx.GraphModule) -> list[UnsupportedNode]:
        """Tensor-computing nodes no lowering accepts (size arithmetic can always stay in PyTorch)."""
        return [UnsupportedNode.from_node(n, self.reasons[n]) for n in gm.graph.nodes
                if counts_as_work(n) and not self.is_node_supported(None, n)]


def isolate_size_computations(gm: torch.fx.GraphModule, support: CoreMLSupport) -> None:
    """Keep symbolic sizes from crossing a partition boundary as outputs (Core ML returns tensors only).

    A size node (sym_size, int arithmetic) joins a partition when an op there uses it; ops running in
    PyTorch get their own copy of the size computation, and a size node no delegated op uses stays in
    PyTorch. Sizes a partition needs from outside are recomputed inside it (see delegate.prepare)."""
    for node in reversed(list(gm.graph.nodes)):
        if not _is_size_node(node) or not support.is_node_supported(None, node):
            continue
        outside = [u for u in node.users if not (u.op == "call_function" and support.is_node_supported(None, u))]
        if len(outside) == len(node.users):
            support.force_eager(node, NOT_TENSOR)
        elif outside:
            copy = _copy_size_chain(gm.graph, node, support)
            for user in outside:
                user.replace_input_with(node, copy)


def _copy_size_chain(graph: torch.fx.Graph, node: torch.fx.Node, support: CoreMLSupport) -> torch.fx.Node:
    def arg(a):
        return _copy_size_chain(graph, a, support) if _is_size_node(a) else a

    args = torch.fx.node.map_arg(node.args, arg)
    kwargs = torch.fx.node.map_arg(node.kwargs, arg)
    with graph.inserting_after(node):
        copy = graph.call_function(node.target, args, kwargs)
    copy.meta.update(node.meta)
    support.force_eager(copy, NOT_TENSOR)
    return copy


def _is_size_node(node) -> bool:
    return isinstance(node, torch.fx.Node) and node.op == "call_function" \
        and isinstance(node.meta.get("val"), (torch.SymInt, torch.SymFloat, torch.SymBool, int, float, bool))


class CoreMLPartitioner(CapabilityBasedPartitioner):
    def __init__(self, gm: torch.fx.GraphModule, support: CoreMLSupport, min_block_size: int):
        super().__init__(gm, support, allows_single_node_partition=True)
        self.min_block_size = min_block_size
        self.too_small: list[Partition] = []

    def propose_partitions(self) -> list[Partition]:
        kept = []
        for p in super().propose_partitions():
            if sum(counts_as_work(n) for n in p.nodes) >= self.min_block_size:
                kept.append(p)
            else:
                self.too_small.append(p)
        # Number the survivors densely so the fused submodules are fused_0, fused_1, ...
        for i, p in enumerate(kept):
            p.id = i
        return kept


def is_compute(node: torch.fx.Node) -> bool:
    """A call node that does work (what delegated fractions count); getitem only unpacks."""
    return node.op == "call_function" and node.target is not operator.getitem


def counts_as_work(node: torch.fx.Node) -> bool:
    """Tensor-valued call nodes: what min_block_size and delegated fractions count (size arithmetic
    and tuple unpacking are not work)."""
    return is_compute(node) and tensor_valued(node.meta.get("val"))


def call_node_ops(nodes) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in nodes:
        if counts_as_work(n):
            out[op_name(n)] = out.get(op_name(n), 0) + 1
    return out


def tensor_valued(val: Any) -> bool:
    if isinstance(val, torch.Tensor):
        return True
    if isinstance(val, (list, tuple)) and val:
        return all(isinstance(v, torch.Tensor) for v in val)
    return False
