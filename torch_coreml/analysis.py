"""`analyze`: how much of a graph converts, without converting it.

    report = torch_coreml.analyze(model, (x,), minimum_deployment_target="iOS17")
    print(report)               # summary line, a table by op, every unsupported node
    report.to_dict()            # the same as JSON-ready data

The graph is decomposed exactly as `export` does (our table, kept ops dry-run checked), then every
call node gets the same support check as conversion: a dry run of its lowering on the node's
FX metadata (`lowering.dry_run.try_lowering`). `getitem` nodes (picking one output of a multi-output
op) are bookkeeping, not ops, and are not counted.
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field

from torch.export import ExportedProgram

from .lowering.context import Unsupported
from .lowering.dry_run import try_lowering
from .lowering.exported import decompose
from .lowering.unsupported import UnsupportedNode, op_name
from .options import ConversionOptions


@dataclass
class OpCoverage:
    """One row of the histogram: an op, how many nodes use it, how many of those convert."""

    op: str
    count: int = 0
    supported: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def status(self) -> str:
        if self.supported == self.count:
            return "yes"
        return "no" if self.supported == 0 else "partly"

    @property
    def reason(self) -> str:
        """The most common refusal reason ("" when every node converts)."""
        return self.reasons.most_common(1)[0][0] if self.reasons else ""

    def to_dict(self) -> dict:
        return {"op": self.op, "count": self.count, "supported": self.supported,
                "status": self.status, "reason": self.reason}


@dataclass
class CoverageReport:
    target: str
    compute_precision: str
    ops: list[OpCoverage]                # sorted by op name
    unsupported: list[UnsupportedNode]   # every refused node, in graph order

    @property
    def total(self) -> int:
        return sum(o.count for o in self.ops)

    @property
    def supported(self) -> int:
        return sum(o.supported for o in self.ops)

    @property
    def percent(self) -> float:
        return 100.0 * self.supported / self.total if self.total else 100.0

    @property
    def fully_supported(self) -> bool:
        return not self.unsupported

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "compute_precision": self.compute_precision,
            "total_nodes": self.total,
            "supported_nodes": self.supported,
            "supported_percent": round(self.percent, 2),
            "ops": [o.to_dict() for o in self.ops],
            "unsupported": [{"op": n.op, "node": n.node, "module": n.module, "source": n.source,
                             "reason": n.reason} for n in self.unsupported],
        }

    def __str__(self) -> str:
        lines = [f"Core ML coverage ({self.target}, {self.compute_precision}): {self.supported}/{self.total} "
                 f"nodes supported ({self.percent:.1f}%), {len(self.ops)} distinct ops"]
        if self.ops:
            width = max(len("op"), *(len(o.op) for o in self.ops))
            lines.append("")
            lines.append(f"  {'op':<{width}}  {'nodes':>5}  {'supported':>9}  reason")
            lines.append(f"  {'-' * width}  {'-' * 5}  {'-' * 9}  {'-' * 6}")
            for o in sorted(self.ops, key=lambda o: (o.status == "yes", o.op)):
                lines.append(f"  {o.op:<{width}}  {o.count:>5}  {o.status:>9}  {o.reason}".rstrip())
        if self.unsupported:
            lines.append("")
            lines.append(f"Unsupported nodes ({len(self.unsupported)}):")
            lines += [f"  - {n}" for n in self.unsupported]
        return "\n".join(lines)


def analyze_program(ep: ExportedProgram, opts: ConversionOptions) -> CoverageReport:
    graph = decompose(ep, opts.target, opts.float_dtype).graph
    rows: dict[str, OpCoverage] = {}
    unsupported: list[UnsupportedNode] = []
    for node in graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        row = rows.setdefault(op_name(node), OpCoverage(op_name(node)))
        row.count += 1
        ok, reason = try_lowering(node.target, tuple(node.args), dict(node.kwargs),
                                  mil_target=opts.target, float_dtype=opts.float_dtype)
        if ok:
            row.supported += 1
        else:
            # A lowering's own refusal reads as conversion reports it, without the exception name.
            reason = reason.removeprefix(f"{Unsupported.__name__}: ")
            row.reasons[reason] += 1
            unsupported.append(UnsupportedNode.from_node(node, reason))
    return CoverageReport(opts.target.name, opts.compute_precision,
                          sorted(rows.values(), key=lambda r: r.op), unsupported)


__all__ = ["CoverageReport", "OpCoverage", "analyze_program"]
