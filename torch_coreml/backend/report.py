"""What the backend did with each graph Dynamo handed it: the support overview.

    y = torch.compile(model, backend="coreml")(x)
    report = torch_coreml.backend.last_report()
    report.delegated_fraction, len(report.partitions), report.fallback_ops

One `CompileReport` per compiled graph (a graph break gives several), kept in a small in-process
registry (`reports()`, newest last) and logged at INFO as a table.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field

log = logging.getLogger("torch_coreml.backend")

# Compiled graphs live as long as the user's model; the registry keeps only recent reports so a
# long-running process that recompiles does not grow without bound.
_REPORTS: collections.deque = collections.deque(maxlen=128)

CONVERTED, CACHE_HIT, FALLBACK = "converted", "cache_hit", "fallback"


@dataclass
class PartitionReport:
    name: str
    nodes: int  # call nodes in the region
    ops: dict[str, int]
    status: str = CONVERTED  # CONVERTED, CACHE_HIT (loaded from the compile cache) or FALLBACK
    reason: str = ""  # why a FALLBACK region could not be converted
    seconds: float = 0.0  # conversion, or cache load, time
    cache_key: str = ""
    package: str = ""  # path of the package the region runs (in the cache when one is configured)

    @property
    def delegated(self) -> bool:
        return self.status != FALLBACK


@dataclass
class CompileReport:
    graph: str
    call_nodes: int = 0
    partitions: list[PartitionReport] = field(default_factory=list)
    # (op, reason) for every call node that runs in PyTorch, in graph order.
    fallback: list[tuple[str, str]] = field(default_factory=list)
    eager_reason: str = ""  # set when the whole graph runs in PyTorch
    seconds: float = 0.0

    @property
    def delegated_nodes(self) -> int:
        return sum(p.nodes for p in self.partitions if p.delegated)

    @property
    def delegated_fraction(self) -> float:
        return self.delegated_nodes / self.call_nodes if self.call_nodes else 0.0

    @property
    def coreml_partitions(self) -> list[PartitionReport]:
        return [p for p in self.partitions if p.delegated]

    @property
    def cache_hits(self) -> int:
        return sum(p.status == CACHE_HIT for p in self.partitions)

    @property
    def fallback_ops(self) -> dict[str, tuple[int, list[str]]]:
        """op → (number of nodes, distinct reasons) for what runs in PyTorch."""
        out: dict[str, tuple[int, list[str]]] = {}
        for op, reason in self.fallback:
            count, reasons = out.get(op, (0, []))
            out[op] = (count + 1, reasons if reason in reasons else reasons + [reason])
        return out

    def summary(self) -> str:
        lines = [f"torch_coreml {self.graph}: {self.delegated_nodes}/{self.call_nodes} call nodes "
                 f"({100 * self.delegated_fraction:.0f}%) in {len(self.coreml_partitions)} Core ML "
                 f"partition(s), {self.cache_hits} from cache, {self.seconds:.2f}s"]
        if self.eager_reason:
            lines.append(f"  whole graph runs in PyTorch: {self.eager_reason}")
        for p in self.partitions:
            extra = f": {p.reason}" if p.reason else ""
            lines.append(f"  {p.name}: {p.nodes} nodes, {p.status} ({p.seconds:.2f}s){extra}")
        for op, (count, reasons) in self.fallback_ops.items():
            lines.append(f"  PyTorch: {op} ×{count}: {'; '.join(reasons)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def record(report: CompileReport) -> None:
    _REPORTS.append(report)
    log.info("%s", report.summary())


def reports() -> list[CompileReport]:
    """Reports of the graphs compiled in this process, oldest first (the most recent 128)."""
    return list(_REPORTS)


def last_report() -> CompileReport | None:
    return _REPORTS[-1] if _REPORTS else None


def clear_reports() -> None:
    _REPORTS.clear()
