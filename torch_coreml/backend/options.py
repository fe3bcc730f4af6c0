"""Options of the torch.compile backend: the conversion options plus how to partition and fall back.

    torch.compile(model, backend="coreml", options={"compute_precision": "float32", "min_block_size": 3})

Every key that is not a backend key below is a conversion option (see `ConversionOptions.make`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from ..lowering.graph import DEFAULT_UPPER_BOUND
from ..options import ConversionOptions

CACHE_ENV = "TORCH_COREML_CACHE_DIR"


@dataclass(frozen=True)
class BackendOptions:
    conversion: ConversionOptions = field(default_factory=ConversionOptions)
    # 1 delegates every supported region, however small: most graphs Dynamo hands us are small and
    # whole-graph conversion is the common case. Raise it when per-call overhead of tiny Core ML
    # regions between PyTorch ops costs more than it saves.
    min_block_size: int = 1
    torch_executed_ops: frozenset = frozenset()  # op names ("aten.add", "aten.add.Tensor") kept in PyTorch
    require_full_graph: bool = False  # raise (listing the unsupported nodes) instead of partitioning
    strict: bool = False  # a region that fails to convert raises instead of running in PyTorch
    cache_dir: Path | None = None  # None: the cache is off
    # Upper bound for dims Dynamo made symbolic when the shape environment has none.
    max_dim: int = DEFAULT_UPPER_BOUND

    @staticmethod
    def parse(options: dict | None) -> "BackendOptions":
        opts = dict(options or {})
        min_block = int(opts.pop("min_block_size", 1))
        if min_block < 1:
            raise ValueError(f"min_block_size must be >= 1, got {min_block}")
        kept = frozenset(op_key(op) for op in _as_list(opts.pop("torch_executed_ops", ())))
        full = bool(opts.pop("require_full_graph", False))
        strict = bool(opts.pop("strict", False))
        use_cache = opts.pop("cache", True)
        cache_dir = opts.pop("cache_dir", None)
        max_dim = int(opts.pop("max_dim", DEFAULT_UPPER_BOUND))
        conversion = ConversionOptions.make(**opts)  # unknown keys raise a TypeError naming them
        return BackendOptions(conversion, min_block, kept, full, strict,
                              default_cache_dir(cache_dir) if use_cache else None, max_dim)


def default_cache_dir(explicit: Any = None) -> Path:
    """`cache_dir` option, else $TORCH_COREML_CACHE_DIR, else $XDG_CACHE_HOME/torch_coreml, else
    ~/.cache/torch_coreml."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "torch_coreml"


def op_key(op: Any) -> str:
    """A comparable name: OpOverload "aten.add.Tensor", packet "aten.add", "torch.ops." stripped."""
    if isinstance(op, str):
        return op.removeprefix("torch.ops.")
    if isinstance(op, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return str(op)
    return getattr(op, "__name__", str(op))


def node_op_keys(target: Any) -> set[str]:
    """Every name a user may use for a node's target: the overload and its packet."""
    keys = {op_key(target)}
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        keys.add(op_key(packet))
    return keys


def _as_list(value: Any) -> Iterable:
    return [value] if isinstance(value, (str, torch._ops.OpOverload, torch._ops.OpOverloadPacket)) else value
