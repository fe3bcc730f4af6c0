"""Reporting nodes that cannot be converted: op, node, module path and the user's source line."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

import torch
import torch.fx

from ..errors import ConversionError

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def op_name(node: torch.fx.Node) -> str:
    t = node.target
    return str(t) if hasattr(t, "_schema") else getattr(t, "__name__", str(t))


def module_path(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path, _ = list(stack.values())[-1]
    # export records paths like "L['self'].encoder.layers[0]"; keep the user-facing part.
    return re.sub(r"^L\['self'\]\.?", "", str(path)) or "<root>"


def source_line(node: torch.fx.Node) -> str:
    trace = node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]+\n\s*([^\n]*)', trace)
    if not frames:
        return ""
    # The innermost frame outside torch itself is the user's line (e.g. `self.fc(x)`, not the
    # F.linear call inside torch/nn/modules/linear.py).
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    file, line, code = (user or frames)[-1]
    return f"{file}:{line}: {code.strip()}"


def describe_node(node: torch.fx.Node) -> str:
    parts = [f"{op_name(node)} (node {node.name!r}"]
    path = module_path(node)
    if path:
        parts.append(f", module {path}")
    parts.append(")")
    src = source_line(node)
    if src:
        parts.append(f" at {src}")
    return "".join(parts)


@dataclass(frozen=True)
class UnsupportedNode:
    op: str
    node: str
    module: str
    source: str
    reason: str

    @staticmethod
    def from_node(node: torch.fx.Node, reason: str) -> "UnsupportedNode":
        return UnsupportedNode(op_name(node), node.name, module_path(node), source_line(node), reason)

    def __str__(self) -> str:
        where = f" in {self.module}" if self.module else ""
        src = f"\n      at {self.source}" if self.source else ""
        return f"{self.op} (node {self.node!r}{where}): {self.reason}{src}"


class UnsupportedOpsError(ConversionError):
    """The graph has nodes no lowering accepts; `.nodes` lists every one of them."""

    def __init__(self, nodes: list[UnsupportedNode]):
        self.nodes = list(nodes)
        counts = Counter(n.op for n in self.nodes)
        summary = ", ".join(f"{op} ×{c}" for op, c in sorted(counts.items()))
        lines = [f"{len(self.nodes)} node(s) cannot be converted to Core ML ({summary}):"]
        lines += [f"  - {n}" for n in self.nodes]
        lines.append("Register a lowering with torch_coreml.register_lowering, or use "
                     "torch.compile(backend='coreml') to run these parts in PyTorch.")
        super().__init__("\n".join(lines))
