"""Model input/output structures survive save/load, including torch's named-tuple return types."""

import torch
import torch.utils._pytree as pytree

from torch_coreml import treespec
from tests.lowering._check import check_conversion


def _spec(value):
    return pytree.tree_flatten(value)[1]


def test_plain_structures_use_torchs_own_text_form():
    spec = _spec((torch.zeros(1), {"a": [torch.zeros(1)]}))
    assert treespec.dumps(spec) == pytree.treespec_dumps(spec)
    assert treespec.loads(treespec.dumps(spec)) == spec


def test_structseq_nodes_round_trip_at_any_depth():
    x = torch.randn(3, 4)
    spec = _spec({"max": torch.max(x, 0), "pair": (x, torch.sort(x))})
    back = treespec.loads(treespec.dumps(spec))
    assert back == spec
    rebuilt = pytree.tree_unflatten([torch.zeros(1)] * spec.num_leaves, back)
    assert type(rebuilt["max"]).__name__ == "max" and type(rebuilt["pair"][1]).__name__ == "sort"


class _ReturnsMax(torch.nn.Module):
    def forward(self, x):
        return torch.max(x, 1)


def test_a_model_returning_a_torch_return_type_converts_and_keeps_it():
    x = torch.randn(2, 5)
    cm = check_conversion(_ReturnsMax(), (x,))
    out = cm(x)
    assert type(out).__name__ == "max"
    torch.testing.assert_close(out.values, x.max(1).values)
