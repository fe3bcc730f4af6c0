"""One Core ML partition: a fused FX submodule → MIL function → saved package → `CoreMLModule`.

The submodule's placeholders are fed three ways: frozen module state (a `get_attr` in the outer
graph) becomes consts of the program; tensors become the program's inputs; a symbolic size passed in
by Dynamo is recomputed inside the program from the shape of a tensor input that carries it (Core ML
has no scalar inputs). Conversion goes through the same `GraphLowerer` and `save_lowered` as
`torch_coreml.export`, and through the compile cache when one is configured.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx

from ..errors import ConversionError, TorchCoreMLError
from ..lowering.graph import GraphInput, GraphLowerer
from ..pipeline import save_lowered
from ..runtime.module import CoreMLModule
from .cache import PackageCache, cache_key, tensor_digest
from .options import BackendOptions
from .report import CACHE_HIT, CONVERTED, PartitionReport

log = logging.getLogger(__name__)
aten = torch.ops.aten


class CoreMLDelegate(torch.nn.Module):
    """Runs one partition's package; called by the outer graph with the runtime tensors only."""

    def __init__(self, module: CoreMLModule, returns_tuple: bool, scalar_inputs: tuple[int, ...] = ()):
        super().__init__()
        self.module = module
        self.returns_tuple = returns_tuple
        self.scalar_inputs = scalar_inputs

    def forward(self, *tensors: torch.Tensor) -> Any:
        if self.scalar_inputs:
            tensors = tuple(t.reshape(1) if i in self.scalar_inputs else t for i, t in enumerate(tensors))
        out = self.module(*tensors)
        if self.returns_tuple and not isinstance(out, tuple):
            return (out,)
        return out


@dataclass
class PreparedPartition:
    graph: torch.fx.Graph
    feeds: dict[str, GraphInput]
    runtime_args: list[torch.fx.Node]  # outer-graph nodes to pass at call time, in input order
    returns_tuple: bool
    scalar_inputs: tuple[int, ...] = ()  # runtime inputs of rank 0, passed with shape [1]


def prepare(outer: torch.fx.GraphModule, call: torch.fx.Node) -> PreparedPartition:
    """Feeds for the submodule called by `call`; raises ConversionError for an input we cannot feed."""
    sub: torch.fx.GraphModule = outer.get_submodule(call.target)
    graph = torch.fx.Graph()
    val_map: dict[torch.fx.Node, torch.fx.Node] = {}
    out = graph.graph_copy(sub.graph, val_map)
    graph.output(out)
    placeholders = [val_map[n] for n in sub.graph.nodes if n.op == "placeholder"]
    feeds, runtime, symbolic = {}, [], []
    for ph, arg in zip(placeholders, call.args):
        val = ph.meta.get("val")
        if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
            feeds[ph.name] = GraphInput(ph.name, value=_attr(outer, arg.target))
        elif isinstance(val, torch.Tensor):
            feeds[ph.name] = GraphInput(ph.name, user_index=len(runtime))
            runtime.append(arg)
        elif isinstance(val, torch.SymInt):
            symbolic.append(ph)
        else:
            raise ConversionError(f"partition input {ph.name!r} is a {type(val).__name__}, not a tensor")
    scalars = tuple(feeds[p.name].user_index for p in placeholders if p.name in feeds
                    and feeds[p.name].user_index is not None and p.meta["val"].dim() == 0)
    for ph in placeholders:
        if ph.name in feeds and feeds[ph.name].user_index in scalars:
            _scalar_as_vector(graph, ph)
    for ph in symbolic:
        _size_from_tensor_input(graph, ph, [p for p in placeholders if p.name in feeds
                                            and feeds[p.name].user_index is not None])
    returns_tuple = isinstance(out, (tuple, list))
    return PreparedPartition(graph, feeds, runtime, returns_tuple, scalars)


def _scalar_as_vector(graph: torch.fx.Graph, ph: torch.fx.Node) -> None:
    """Core ML inputs have rank >= 1: a 0-d input (e.g. a float Dynamo turned into a tensor) comes in
    with shape [1] and is viewed back to a scalar first thing."""
    scalar = ph.meta["val"]
    with graph.inserting_after(ph):
        view = graph.call_function(aten.view.default, (ph, []))
    ph.replace_all_uses_with(view, delete_user_cb=lambda user: user is not view)
    view.meta["val"] = scalar
    ph.meta["val"] = scalar.reshape(1)


def _size_from_tensor_input(graph: torch.fx.Graph, ph: torch.fx.Node, tensors: list[torch.fx.Node]) -> None:
    expr = ph.meta["val"].node.expr
    for t in tensors:
        for dim, size in enumerate(t.meta["val"].shape):
            if isinstance(size, torch.SymInt) and size.node.expr == expr:
                with graph.inserting_after(t):
                    size_node = graph.call_function(aten.sym_size.int, (t, dim))
                size_node.meta["val"] = ph.meta["val"]
                ph.replace_all_uses_with(size_node)
                graph.erase_node(ph)
                return
    raise ConversionError(f"symbolic size {expr} is not the size of any tensor input of the partition")


def key_for(prep: PreparedPartition, opts: BackendOptions, ranges: dict) -> str:
    gm = torch.fx.GraphModule(torch.nn.Module(), prep.graph)
    parts: list[str] = [gm.code, repr(opts.conversion), repr(sorted(ranges.items()))]
    for name, feed in sorted(prep.feeds.items()):
        if feed.value is not None:
            parts.append(f"{name}=const {tensor_digest(feed.value)}")
    for node in prep.graph.nodes:
        val = node.meta.get("val")
        if node.op == "placeholder" and isinstance(val, torch.Tensor):
            parts.append(f"{node.name}: {val.dtype} {list(val.shape)}")
    return cache_key(parts)


def convert(prep: PreparedPartition, opts: BackendOptions, ranges: dict, name: str,
            ops: dict[str, int], nodes: int) -> tuple[CoreMLDelegate, PartitionReport]:
    """Load from the cache or convert; TorchCoreMLError (or any lowering bug) propagates."""
    start = time.perf_counter()
    conv = opts.conversion
    key = key_for(prep, opts, ranges) if opts.cache_dir else ""
    cache = PackageCache(opts.cache_dir) if opts.cache_dir else None
    module, status = None, CONVERTED
    if cache is not None:
        module = _load_cached(cache, key, conv)
        status = CACHE_HIT if module is not None else CONVERTED
    if module is None:
        lowerer = GraphLowerer(prep.graph, prep.feeds, target=conv.target, float_dtype=conv.float_dtype,
                               ranges=ranges, function_name="main")
        lowered = lowerer.lower()
        if cache is not None:
            path = cache.store(key, lambda p: save_lowered(lowered, p, conv))
            module = CoreMLModule(path, executor=conv.runtime, compute_units=conv.compute_units)
        else:
            path = Path(tempfile.mkdtemp(prefix="torch_coreml_")) / "model.mlpackage"
            save_lowered(lowered, path, conv)
            module = CoreMLModule(path, executor=conv.runtime, compute_units=conv.compute_units)
            weakref.finalize(module, shutil.rmtree, str(path.parent), True)
    report = PartitionReport(name, nodes, ops, status, seconds=time.perf_counter() - start, cache_key=key,
                             package=str(module.package_path))
    return CoreMLDelegate(module, prep.returns_tuple, prep.scalar_inputs), report


def _load_cached(cache: PackageCache, key: str, conv) -> CoreMLModule | None:
    try:
        path = cache.load(key)
        if path is None:
            return None
        return CoreMLModule(path, executor=conv.runtime, compute_units=conv.compute_units)
    except (TorchCoreMLError, OSError, ValueError) as e:
        log.warning("compile cache entry %s is corrupted (%s); rebuilding it", cache.entry(key), e)
        cache.discard(key)
        return None


def _attr(gm: torch.nn.Module, qualname: str) -> torch.Tensor:
    obj: Any = gm
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
