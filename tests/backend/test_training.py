"""Inference only: anything needing gradients or training-mode state updates runs in PyTorch."""

import copy

import pytest
import torch

import torch_coreml.backend as backend
from tests.backend._models import CNN, FP32, MLP, assert_close


def _compile(model, cache_dir, **options):
    return torch.compile(model, backend="coreml", options={**FP32, "cache_dir": cache_dir, **options})


def test_input_requiring_grad_falls_back_with_correct_gradients(cache_dir):
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(2, 4, requires_grad=True)
    with pytest.warns(UserWarning, match="require grad; the Core ML backend is inference-only"):
        out = _compile(model, cache_dir)(x)
    out.sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    model(x_ref).sum().backward()
    assert_close(x.grad, x_ref.grad)
    report = backend.last_report()
    assert report.eager_reason and report.delegated_fraction == 0.0


def test_training_mode_batchnorm_updates_running_stats_in_pytorch(cache_dir):
    torch.manual_seed(0)
    model = CNN().train()
    reference = copy.deepcopy(model)
    x = torch.randn(4, 3, 8, 8)
    with pytest.warns(UserWarning, match="mutates module buffers"):
        got = _compile(model, cache_dir)(x)
    assert_close(got, reference(x))
    assert_close(model.bn.running_mean, reference.bn.running_mean)


def test_training_mode_with_dropout_and_grads_falls_back(cache_dir):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).train()
    with pytest.warns(UserWarning, match="looks like it is training"):
        out = _compile(model, cache_dir)(torch.randn(8, 4))
    out.sum().backward()
    assert model[0].weight.grad is not None


def test_strict_refuses_instead_of_falling_back(cache_dir):
    compiled = _compile(MLP().eval(), cache_dir, strict=True)
    with pytest.raises(Exception, match="inference-only"):
        compiled(torch.randn(2, 4, requires_grad=True))


def test_eval_mode_without_no_grad_is_delegated(cache_dir):
    # Parameters require grad but nothing asks for a gradient: the common inference call.
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(2, 4)
    got = _compile(model, cache_dir)(x)
    assert_close(got, model(x).detach())
    assert not got.requires_grad  # a backward through it raises instead of giving wrong gradients
    assert backend.last_report().delegated_fraction == 1.0


def test_changed_weights_never_run_stale(cache_dir):
    torch.manual_seed(0)
    model = MLP().eval()
    compiled = _compile(model, cache_dir)
    x = torch.randn(2, 4)
    with torch.no_grad():
        assert_close(compiled(x), model(x))
        model.fc1.weight.add_(1.0)  # e.g. an optimizer step between inference calls
        with pytest.warns(UserWarning, match="changed since they were frozen"):
            assert_close(compiled(x), model(x))


class _WithMask(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.mask = torch.ones(4)  # a plain attribute, swapped between calls: not frozen

    def forward(self, x):
        return self.fc(x) * self.mask


def test_plain_tensor_attributes_stay_inputs(cache_dir):
    torch.manual_seed(0)
    model = _WithMask().eval()
    compiled = _compile(model, cache_dir)
    x = torch.randn(2, 4)
    with torch.no_grad():
        assert_close(compiled(x), model(x))
        model.mask = torch.tensor([1.0, 0.0, 2.0, 0.0])
        assert_close(compiled(x), model(x))
    assert backend.last_report().delegated_fraction == 1.0
