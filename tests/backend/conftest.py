"""Every backend test starts from a fresh Dynamo, an empty report registry and a private cache."""

import pytest
import torch

import torch_coreml.backend as backend
from torch_coreml.lowering.registry import REGISTRY, LoweringEntry
from tests.backend import _models


@pytest.fixture(autouse=True)
def fresh_dynamo(tmp_path, monkeypatch):
    # Never touch the user's cache, even in a test that forgets cache_dir.
    monkeypatch.setenv("TORCH_COREML_CACHE_DIR", str(tmp_path / "env_cache"))
    torch._dynamo.reset()
    backend.clear_reports()
    yield
    torch._dynamo.reset()


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def broken_lowering():
    target = torch.ops.coreml_test.broken.default
    REGISTRY.add(LoweringEntry(target, _models.broken_lowering), replace=True)
    yield target
    REGISTRY._entries.pop(target, None)  # test-only op: leave the registry as we found it

