"""Graphs Core ML takes whole: one partition, 100% delegated, outputs equal eager."""

import pytest
import torch

import torch_coreml.backend as backend
from tests.backend._models import CNN, FP32, MLP, GraphBreaks, assert_close


def _compile(model, cache_dir, **options):
    return torch.compile(model, backend="coreml", options={**FP32, "cache_dir": cache_dir, **options})


@pytest.mark.parametrize("make, shape", [(MLP, (2, 4)), (CNN, (2, 3, 8, 8))], ids=["mlp", "cnn"])
def test_whole_graph(make, shape, cache_dir):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(shape)
    with torch.no_grad():
        got = _compile(model, cache_dir)(x)
        assert_close(got, model(x))
    (report,) = backend.reports()
    assert report.delegated_fraction == 1.0
    assert len(report.coreml_partitions) == 1 and not report.fallback


def test_graph_breaks_each_graph_is_delegated(cache_dir, capsys):
    torch.manual_seed(0)
    model = GraphBreaks().eval()
    compiled = _compile(model, cache_dir)
    with torch.no_grad():
        for x in (torch.randn(2, 4), -torch.ones(2, 4) * 5):  # both branches of the data-dependent if
            assert_close(compiled(x), model(x))
    assert "graph break" in capsys.readouterr().out
    reports = backend.reports()
    assert len(reports) >= 3  # before the if, after each branch (the print splits again)
    assert all(r.delegated_fraction == 1.0 for r in reports if r.call_nodes)


def test_float16_program_within_fp16_tolerance(cache_dir):
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(3, 4)
    compiled = torch.compile(model, backend="coreml", options={"cache_dir": cache_dir})
    with torch.no_grad():
        assert_close(compiled(x), model(x), "float16")


def test_report_is_logged(cache_dir, caplog):
    caplog.set_level("INFO", logger="torch_coreml.backend")
    with torch.no_grad():
        _compile(MLP().eval(), cache_dir)(torch.randn(2, 4))
    assert any("call nodes (100%) in 1 Core ML partition" in r.getMessage() for r in caplog.records)


def test_inference_mode(cache_dir):
    torch.manual_seed(0)
    model = CNN().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        assert_close(_compile(model, cache_dir)(x), model(x))
    assert backend.last_report().delegated_fraction == 1.0


def test_plain_function_with_python_scalars(cache_dir):
    # Dynamo may pass a float argument as a 0-d tensor: it crosses into Core ML with shape [1].
    def f(x, scale, shift: int):
        return torch.relu(x * scale) + shift

    compiled = torch.compile(f, backend="coreml", options={**FP32, "cache_dir": cache_dir})
    x = torch.randn(2, 3)
    with torch.no_grad():
        for scale in (0.5, 1.5, 2.5):
            assert_close(compiled(x, scale, 3), f(x, scale, 3))
    assert all(r.coreml_partitions for r in backend.reports())
