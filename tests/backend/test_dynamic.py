"""Symbolic dims become flexible Core ML input ranges: a new batch size runs without recompiling."""

import torch
from torch._dynamo.utils import counters

import torch_coreml
import torch_coreml.backend as backend
from tests.backend._models import FP32, MLP, OpaqueInTheMiddle, assert_close


def _frames():
    return counters["stats"]["unique_graphs"]


def test_dynamic_batch_does_not_recompile(cache_dir):
    torch.manual_seed(0)
    model = MLP().eval()
    compiled = torch.compile(model, backend="coreml", dynamic=True,
                             options={**FP32, "cache_dir": cache_dir})
    counters.clear()
    with torch.no_grad():
        for batch in (2, 3, 7):
            x = torch.randn(batch, 4)
            assert_close(compiled(x), model(x))
    assert _frames() == 1
    (report,) = backend.reports()
    assert report.delegated_fraction == 1.0
    (feature,) = torch_coreml.load(report.partitions[0].package).interface.inputs
    assert feature.flexibility is not None and feature.allows((7, 4)) and feature.allows((100, 4))


def test_mark_dynamic(cache_dir):
    torch.manual_seed(0)
    model = MLP().eval()
    compiled = torch.compile(model, backend="coreml", options={**FP32, "cache_dir": cache_dir})
    counters.clear()
    x = torch.randn(4, 4)
    torch._dynamo.mark_dynamic(x, 0)
    with torch.no_grad():
        assert_close(compiled(x), model(x))
        y = torch.randn(9, 4)
        assert_close(compiled(y), model(y))
    assert _frames() == 1


def test_static_by_default_recompiles_for_a_new_shape(cache_dir):
    model = MLP().eval()
    compiled = torch.compile(model, backend="coreml", dynamic=False, options={**FP32, "cache_dir": cache_dir})
    with torch.no_grad():
        compiled(torch.randn(2, 4))
        compiled(torch.randn(3, 4))
    assert len(backend.reports()) == 2



def test_dynamic_batch_with_a_pytorch_op_between_partitions(cache_dir):
    # The second partition gets the batch size as a symbolic int input: it is recomputed in the
    # program from the shape of its tensor input.
    torch.manual_seed(0)
    model = OpaqueInTheMiddle().eval()
    compiled = torch.compile(model, backend="coreml", dynamic=True, options={**FP32, "cache_dir": cache_dir})
    counters.clear()
    with torch.no_grad():
        for batch in (2, 5, 11):
            x = torch.randn(batch, 4)
            assert_close(compiled(x), model(x))
    assert _frames() == 1
    (report,) = backend.reports()
    assert len(report.coreml_partitions) == 2 and list(report.fallback_ops) == ["coreml_test.opaque.default"]
