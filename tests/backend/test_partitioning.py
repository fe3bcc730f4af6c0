"""Partitioning: unsupported ops run in PyTorch between Core ML partitions, never silently."""

import pytest
import torch

import torch_coreml.backend as backend
from torch_coreml.lowering.unsupported import UnsupportedOpsError
from tests.backend._models import FP32, MLP, OpaqueInTheMiddle, TwoOpaque, WithBroken, assert_close, opaque


def _run(model, x, cache_dir, **options):
    compiled = torch.compile(model, backend="coreml", options={**FP32, "cache_dir": cache_dir, **options})
    with torch.no_grad():
        got = compiled(x)
        assert_close(got, model(x))
    return backend.last_report()


def test_unsupported_op_in_the_middle_falls_back(cache_dir):
    torch.manual_seed(0)
    report = _run(OpaqueInTheMiddle().eval(), torch.randn(3, 4), cache_dir)
    assert len(report.coreml_partitions) == 2
    assert list(report.fallback_ops) == ["coreml_test.opaque.default"]
    count, reasons = report.fallback_ops["coreml_test.opaque.default"]
    assert count == 1 and reasons == ["no lowering for this op"]
    assert report.delegated_nodes == report.call_nodes - 1
    assert "coreml_test.opaque.default ×1: no lowering for this op" in report.summary()


def test_several_partitions(cache_dir):
    torch.manual_seed(0)
    report = _run(TwoOpaque().eval(), torch.randn(2, 6), cache_dir)
    assert len(report.coreml_partitions) == 3
    assert report.fallback_ops["coreml_test.opaque.default"][0] == 2


def test_torch_executed_ops_stay_in_pytorch(cache_dir):
    torch.manual_seed(0)
    report = _run(MLP().eval(), torch.randn(2, 4), cache_dir, torch_executed_ops=["aten.relu"])
    assert report.fallback_ops == {"aten.relu.default": (1, ["listed in torch_executed_ops"])}
    assert len(report.coreml_partitions) == 2


def test_min_block_size_keeps_small_regions_in_pytorch(cache_dir):
    torch.manual_seed(0)
    # Each side of the opaque op has 3 call nodes (addmm with its transpose, relu / sigmoid).
    report = _run(OpaqueInTheMiddle().eval(), torch.randn(3, 4), cache_dir, min_block_size=4)
    assert report.coreml_partitions == []
    assert report.delegated_fraction == 0.0
    assert any(r == ["region smaller than min_block_size"] for _, r in report.fallback_ops.values())


def test_require_full_graph_lists_unsupported_nodes(cache_dir):
    compiled = torch.compile(OpaqueInTheMiddle().eval(), backend="coreml",
                             options={"cache_dir": cache_dir, "require_full_graph": True})
    with pytest.raises(Exception) as info, torch.no_grad():
        compiled(torch.randn(3, 4))
    error = _cause(info.value, UnsupportedOpsError)
    assert error is not None, info.value
    assert [n.op for n in error.nodes] == ["coreml_test.opaque.default"]
    assert "coreml_test.opaque.default" in str(error)


def test_failing_region_warns_and_runs_in_pytorch(cache_dir, broken_lowering):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"partition 0 .*coreml_test\.broken\.default.* runs in PyTorch"):
        report = _run(WithBroken().eval(), torch.randn(2, 4), cache_dir)
    (part,) = report.partitions
    assert part.status == "fallback" and "coreml_test.broken" in part.reason
    assert report.delegated_fraction == 0.0


def test_strict_raises_on_a_failing_region(cache_dir, broken_lowering):
    compiled = torch.compile(WithBroken().eval(), backend="coreml",
                             options={"cache_dir": cache_dir, "strict": True})
    with pytest.raises(Exception, match=r"coreml_test\.broken"), torch.no_grad():
        compiled(torch.randn(2, 4))


def test_unknown_option_is_an_error(cache_dir):
    compiled = torch.compile(MLP(), backend="coreml", options={"cache_dir": cache_dir, "min_blok_size": 2})
    with pytest.raises(Exception, match="min_blok_size"):
        compiled(torch.randn(2, 4))


def _cause(error, kind):
    while error is not None and not isinstance(error, kind):
        error = error.__cause__ or error.__context__
    return error


class _Structured(torch.nn.Module):
    """Integer inputs, int64 and scalar outputs, nested output structure, a PyTorch op in between."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc = torch.nn.Embedding(10, 6), torch.nn.Linear(6, 4)

    def forward(self, idx, y):
        h = self.fc(self.emb(idx))
        return {"logits": opaque(h) + y, "arg": h.argmax(-1), "h": (h * 2, h.sum())}


def test_structured_inputs_and_outputs(cache_dir):
    torch.manual_seed(0)
    model = _Structured().eval()
    idx, y = torch.randint(0, 10, (2, 3)), torch.randn(2, 3, 4)
    compiled = torch.compile(model, backend="coreml", options={**FP32, "cache_dir": cache_dir})
    with torch.no_grad():
        got, expected = compiled(idx, y), model(idx, y)
    assert got["arg"].dtype == torch.int64
    assert_close(got, expected)
    assert len(backend.last_report().coreml_partitions) == 2


def test_backend_failure_runs_the_graph_in_pytorch(cache_dir, monkeypatch):
    from torch_coreml.backend import compiler

    def boom(*args, **kwargs):
        raise RuntimeError("simulated backend bug")

    monkeypatch.setattr(compiler, "freeze_module_state", boom)
    torch.manual_seed(0)
    model = MLP().eval()
    with pytest.warns(UserWarning, match="runs in PyTorch: the backend failed: RuntimeError: simulated"):
        report = _run(model, torch.randn(2, 4), cache_dir)
    assert report.delegated_fraction == 0.0 and report.call_nodes > 0
    torch._dynamo.reset()
    strict = torch.compile(model, backend="coreml", options={"cache_dir": cache_dir, "strict": True})
    with pytest.raises(Exception, match="simulated backend bug"), torch.no_grad():
        strict(torch.randn(2, 4))
