"""torch_coreml.analyze: the coverage report agrees with conversion, node by node."""

from __future__ import annotations

import json

import pytest
import torch

import torch_coreml
from torch_coreml.analysis import CoverageReport


# Two custom ops nobody else lowers, so these tests do not depend on which aten lowerings exist.
@torch.library.custom_op("tcm_analyze::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@mystery.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("tcm_analyze::picky", mutates_args=())
def picky(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@picky.register_fake
def _(x):
    return torch.empty_like(x)


@torch_coreml.register_lowering(torch.ops.tcm_analyze.picky.default)
def _picky(ctx, x):
    """picky(Tensor x) -> Tensor: accepts float tensors only."""
    if x.dtype is not ctx.float_dtype:
        raise ctx.unsupported("picky needs a float tensor")
    return ctx.b.op("relu", x=x)


class Supported(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x + 1) * 2


class Block(torch.nn.Module):
    def forward(self, x):
        return torch.ops.tcm_analyze.mystery(x) + 1


class Mixed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x, i):
        y = torch.ops.tcm_analyze.picky(self.block(x))
        j = torch.ops.tcm_analyze.picky(i)
        return y, j


def _mixed_inputs():
    return torch.randn(2, 3), torch.arange(6, dtype=torch.int32).reshape(2, 3)


def test_fully_supported_graph():
    report = torch_coreml.analyze(Supported(), (torch.randn(2, 3),), compute_precision="float32")
    assert isinstance(report, CoverageReport)
    assert report.total == 3 and report.supported == 3 and report.percent == 100.0
    assert report.fully_supported and report.unsupported == []
    assert {o.op for o in report.ops} == {"aten.add.Tensor", "aten.relu.default", "aten.mul.Tensor"}
    assert all(o.status == "yes" for o in report.ops)
    assert "3/3 nodes supported (100.0%)" in str(report)


def test_unsupported_nodes_are_located_and_counted():
    ep = torch.export.export(Mixed(), _mixed_inputs())
    report = torch_coreml.analyze(ep, compute_precision="float32", minimum_deployment_target="iOS17")
    rows = {o.op: o for o in report.ops}
    assert rows["tcm_analyze.mystery.default"].status == "no"
    assert rows["tcm_analyze.mystery.default"].reason == "no lowering for this op"
    picky_row = rows["tcm_analyze.picky.default"]
    assert (picky_row.count, picky_row.supported, picky_row.status) == (2, 1, "partly")
    assert picky_row.reason == "picky needs a float tensor"
    assert rows["aten.add.Tensor"].status == "yes"
    assert report.total == 4 and report.supported == 2 and report.percent == 50.0

    by_op = {n.op: n for n in report.unsupported}
    assert set(by_op) == {"tcm_analyze.mystery.default", "tcm_analyze.picky.default"}
    mystery_node = by_op["tcm_analyze.mystery.default"]
    assert mystery_node.module == "block"
    assert mystery_node.source.startswith(__file__) and "mystery(x)" in mystery_node.source
    assert "picky(i)" in by_op["tcm_analyze.picky.default"].source

    text = str(report)
    assert "2/4 nodes supported (50.0%)" in text and "iOS17" in text
    assert "tcm_analyze.mystery.default" in text and "partly" in text and "picky(i)" in text


def test_report_agrees_with_conversion():
    """The nodes analyze refuses are exactly the ones export's UnsupportedOpsError lists."""
    report = torch_coreml.analyze(Mixed(), _mixed_inputs(), compute_precision="float32")
    with pytest.raises(torch_coreml.UnsupportedOpsError) as info:
        torch_coreml.export(Mixed(), _mixed_inputs(), compute_precision="float32")
    assert sorted((n.op, n.node) for n in info.value.nodes) == \
        sorted((n.op, n.node) for n in report.unsupported)


def test_to_dict_is_json():
    report = torch_coreml.analyze(Mixed(), _mixed_inputs(), compute_precision="float16")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total_nodes"] == 4 and data["supported_nodes"] == 2
    assert data["supported_percent"] == 50.0 and data["compute_precision"] == "float16"
    assert {o["op"] for o in data["ops"]} >= {"tcm_analyze.picky.default", "aten.add.Tensor"}
    assert [u["op"] for u in data["unsupported"]].count("tcm_analyze.picky.default") == 1
    assert all(set(u) == {"op", "node", "module", "source", "reason"} for u in data["unsupported"])


def test_fp16_dry_run_uses_the_compute_precision():
    report = torch_coreml.analyze(Supported(), (torch.randn(2, 3),))  # float16 by default
    assert report.compute_precision == "float16" and report.fully_supported
