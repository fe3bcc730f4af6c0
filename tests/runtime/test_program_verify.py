"""CoreMLProgram.verify compares with the eager program, built only when first asked for."""

import pickle

import pytest
import torch

import torch_coreml


class _Scale(torch.nn.Module):
    def forward(self, x):
        return x * 3 + 1


def test_verify_builds_the_eager_module_on_first_use(monkeypatch):
    x = torch.randn(2, 3)
    ep = torch.export.export(_Scale(), (x,))
    built = []
    original = type(ep).module
    monkeypatch.setattr(type(ep), "module", lambda self: built.append(1) or original(self))
    cm = torch_coreml.export(ep, compute_precision="float32")
    assert built == []  # conversion alone does not build the eager module
    (error,) = cm.verify(x)
    assert built == [1] and error.max_abs < 1e-6
    cm.verify(x)
    assert built == [1]  # built once


def test_a_pickled_program_runs_but_cannot_verify():
    x = torch.randn(2, 3)
    copy = pickle.loads(pickle.dumps(torch_coreml.export(_Scale(), (x,), compute_precision="float32")))
    torch.testing.assert_close(copy(x), x * 3 + 1)
    with pytest.raises(RuntimeError, match="unpickled"):
        copy.verify(x)
