"""CoreMLModule: pytree in and out, owning its package through pickle / deepcopy / state_dict."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
import torch.utils._pytree as pytree

import torch_coreml
from torch_coreml.errors import PackageError, RuntimeInputError
from torch_coreml.format.description import describe_function
from torch_coreml.format.serialize import save_model
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.runtime import CoreMLModule


def eager(inputs, scale):
    """What the saved program computes, as the original module would have: dict in, tuple + dict out."""
    a, b = inputs["a"], inputs["b"]
    return (a + b, {"scaled": b * scale})


@pytest.fixture
def package(tmp_path):
    fn, b = new_function("main", {"a": tensor("fp32", (2, 3)), "b": tensor("fp32", (2, 3))}, "iOS17")
    a, x = fn.inputs
    scale = np.arange(6, dtype=np.float32).reshape(2, 3)
    fn.block.outputs = [b.op("add", x=a, y=x, name="sum"), b.op("mul", x=x, y=scale, name="scaled")]
    program = Program()
    program.add(fn)
    interface = describe_function(fn)
    example = {"a": torch.ones(2, 3), "b": torch.ones(2, 3)}
    interface.input_tree = pytree.treespec_dumps(pytree.tree_flatten(((example,), {}))[1])
    interface.output_tree = pytree.treespec_dumps(pytree.tree_flatten(eager(example, 1.0))[1])
    return save_model(tmp_path / "pair.mlpackage", program, interface), torch.from_numpy(scale)


def check_pytree_call(module, scale):
    inputs = {"a": torch.randn(2, 3), "b": torch.randn(2, 3)}
    out = module(inputs)
    expected = eager(inputs, scale)
    assert isinstance(out, tuple) and isinstance(out[1], dict)
    torch.testing.assert_close(out, expected)


def test_load_gives_a_module_with_the_original_structure(package):
    path, scale = package
    module = torch_coreml.load(path)
    assert isinstance(module, torch.nn.Module) and module.executor == "reference"
    assert module.package_path == path
    assert "add(" in str(module.program)
    check_pytree_call(module, scale)


def test_wrong_structure_is_refused(package):
    module = torch_coreml.load(package[0])
    with pytest.raises(RuntimeInputError, match="structure"):
        module(torch.ones(2, 3), torch.ones(2, 3))


def test_pickle_and_deepcopy_carry_the_package(package, tmp_path):
    path, scale = package
    module = torch_coreml.load(path)
    data = pickle.dumps(module)
    copied = copy.deepcopy(module)
    for p in path.rglob("*"):  # the original package is gone: the copies must not need it
        if p.is_file():
            p.unlink()
    for clone in (pickle.loads(data), copied):
        assert clone.package_path != path and clone.package_path.name == "pair.mlpackage"
        check_pytree_call(clone, scale)


def test_state_dict_carries_the_package(package, tmp_path):
    path, scale = package
    module = torch_coreml.load(path)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    other = torch_coreml.load(path)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert other.package_path != path
    check_pytree_call(other, scale)


def test_save_copies_the_package(package, tmp_path):
    path, scale = package
    module = torch_coreml.load(path)
    target = tmp_path / "copy.mlpackage"
    module.save(target)
    module.save(target)  # replacing an existing package works too
    check_pytree_call(CoreMLModule(target), scale)
    with pytest.raises(PackageError, match="mlpackage"):
        module.save(tmp_path / "copy.zip")


def test_packages_without_pytree_take_positional_tensors(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp32", (3,))}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0])]
    program = Program()
    program.add(fn)
    module = torch_coreml.load(save_model(tmp_path / "r.mlpackage", program))
    x = torch.tensor([-1.0, 0.0, 2.0])
    torch.testing.assert_close(module(x), torch.relu(x))
    with pytest.raises(RuntimeInputError, match=r"expected 1 input tensor\(s\) \['x'\], got 2"):
        module(x, x)
