"""The node-by-node decomposition gives what torch's whole-program `run_decompositions` gives, and falls
back to it for graphs it does not model."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import torch_coreml
from tests.lowering._check import check_conversion
from torch_coreml.lowering import exported
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.targets import Target


class Mixed(torch.nn.Module):
    """Composite ops the default export IR keeps (conv2d, batch_norm, pad, flatten, layer_norm,
    dropout, transpose, softmax) and one op that must be traced (hardswish decomposes)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.norm = torch.nn.LayerNorm(36)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, x):
        y = self.bn(self.conv(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")))
        y = self.drop(self.norm(torch.flatten(y, 2)))
        y = torch.nn.functional.hardswish(y.transpose(1, 2))
        return torch.softmax(y, -1), torch.logit(y.sigmoid(), eps=1e-3)


def _decomposed(ep, fast: bool, monkeypatch):
    if not fast:
        monkeypatch.setattr(exported, "decompose_nodes", lambda *a: None)
    return exported.decompose(ep, Target.iOS17, dt.fp32)


def _ops(cm) -> Counter:
    return Counter(op.op_type for op in cm.program.functions["main"].block.walk() if op.op_type != "const")


def _export(model, x, **kwargs):
    return torch.export.export(model.eval(), (x,), **kwargs)


def test_fast_path_is_taken_and_gives_the_same_program(monkeypatch):
    torch.manual_seed(0)
    model, x = Mixed().eval(), torch.randn(2, 3, 6, 6)
    ep = _export(model, x)
    assert _decomposed(ep, True, monkeypatch).ep is ep  # no new ExportedProgram: the fast path
    check_conversion(model, (x,))
    fast_ops = _ops(torch_coreml.export(ep, compute_precision="float32"))
    monkeypatch.setattr(exported, "decompose_nodes", lambda *a: None)
    assert fast_ops == _ops(torch_coreml.export(ep, compute_precision="float32"))


def test_fast_path_with_symbolic_batch(monkeypatch):
    torch.manual_seed(0)
    model = Mixed().eval()
    batch = torch.export.Dim("batch", min=1, max=8)
    check_conversion(model, (torch.randn(2, 3, 6, 6),), dynamic_shapes=({0: batch},),
                     run_inputs=[(torch.randn(5, 3, 6, 6),)])


class InPlaceOnFresh(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        before = y + 0          # reads y before the write
        y.add_(1)
        y.mul_(3)
        return y, before, y.relu_()


def test_in_place_ops_on_fresh_tensors_become_functional(monkeypatch):
    x = torch.randn(3, 4)
    ep = _export(InPlaceOnFresh(), x)
    assert _decomposed(ep, True, monkeypatch).ep is ep
    check_conversion(InPlaceOnFresh(), (x,))


class InPlaceOnView(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        y[0].add_(1)            # the write goes through a view to y
        return y


def test_a_write_through_a_view_falls_back_to_the_whole_program_decomposition(monkeypatch):
    x = torch.randn(3, 4)
    ep = _export(InPlaceOnView(), x)
    assert _decomposed(ep, True, monkeypatch).ep is not ep  # run_decompositions made a new program
    check_conversion(InPlaceOnView(), (x,))


def test_a_higher_order_op_falls_back(monkeypatch):
    class Branchy(torch.nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda v: v.sin(), lambda v: v.cos(), (x,))

    x = torch.randn(3)
    ep = _export(Branchy(), x)
    assert _decomposed(ep, True, monkeypatch).ep is not ep
    check_conversion(Branchy(), (x,), run_inputs=[(-x.abs() - 1,)])


@pytest.mark.parametrize("name", ["input", "list"])
def test_placeholders_keep_names_fx_would_rename(name, monkeypatch):
    # The graph signature refers to placeholders by name; a copy must not rename `input`.
    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

    exec(f"def forward(self, {name}):\n    return self.fc({name})", globals(), scope := {})
    Linear.forward = scope["forward"]
    torch.manual_seed(0)
    check_conversion(Linear(), (torch.randn(3, 4),))


class TrainingBatchNorm(torch.nn.Module):
    def forward(self, x, running_mean, running_var):
        return torch.nn.functional.batch_norm(x, running_mean, running_var, training=True, momentum=0.2)


def test_training_batch_norm_updates_the_callers_running_stats(monkeypatch):
    # batch_norm's schema hides the in-place update; only the whole-program path exposes it.
    torch.manual_seed(0)
    x, mean, var = torch.randn(4, 3, 5, 5), torch.randn(3), torch.rand(3) + 0.5
    ep = torch.export.export(TrainingBatchNorm(), (x, mean.clone(), var.clone()))
    assert _decomposed(ep, True, monkeypatch).ep is not ep
    cm = torch_coreml.export(TrainingBatchNorm(), (x, mean.clone(), var.clone()), compute_precision="float32")
    ours_mean, ours_var, eager_mean, eager_var = mean.clone(), var.clone(), mean.clone(), var.clone()
    torch.testing.assert_close(cm(x, ours_mean, ours_var), TrainingBatchNorm()(x, eager_mean, eager_var))
    torch.testing.assert_close(ours_mean, eager_mean)
    torch.testing.assert_close(ours_var, eager_var)


class Composites(torch.nn.Module):
    def forward(self, a, b):
        return (torch.nn.functional.cosine_similarity(a, b),
                torch.nn.functional.interpolate(a[None], scale_factor=2.0, mode="nearest"))


def test_ops_inside_a_composites_kernel_are_decomposed_too(monkeypatch):
    # cosine_similarity's kernel calls clamp_min and nearest upsampling a backend kernel: both must
    # come out as ops we lower, as torch's own decomposition gives.
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    ep = torch.export.export(Composites(), (a, b))
    graph = _decomposed(ep, True, monkeypatch).graph
    targets = {str(n.target) for n in graph.nodes if n.op == "call_function"}
    assert not {"aten.clamp_min.Tensor", "aten.upsample_nearest1d.default"} & targets, targets
    check_conversion(Composites(), (a, b))


class Reversed(torch.nn.Module):
    def forward(self, x, y):
        return 1.0 - x, torch.rsub(x, y, alpha=2), torch.rsub(x.int(), 3)


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_rsub_lowers_without_a_trace(precision, monkeypatch):
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    ep = torch.export.export(Reversed(), (x, y))
    targets = [str(n.target) for n in _decomposed(ep, True, monkeypatch).graph.nodes if n.op == "call_function"]
    assert targets.count("aten.rsub.Scalar") + targets.count("aten.rsub.Tensor") == 3, targets
    check_conversion(Reversed(), (x, y), precision=precision)
