"""TorchScript path: traced and scripted modules and saved `.pt` files go through the export pipeline.

Each test converts the ScriptModule (or the path), saves the package, has coremltools load it, reloads
it and runs the reference runtime against the ScriptModule itself (`check_conversion`).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest
import torch
from torch import nn
from torch.export import Dim

import torch_coreml
from tests.lowering._check import check_conversion
from torch_coreml.lowering.unsupported import UnsupportedOpsError


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


def _cnn():
    torch.manual_seed(0)
    m = SmallCNN().eval()
    with torch.no_grad():  # non-trivial running stats, so batch norm is really exercised
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_traced_cnn(precision):
    x = torch.randn(2, 3, 8, 8)
    check_conversion(torch.jit.trace(_cnn(), (x,)), (x,), precision=precision)


def test_traced_cnn_lowers_like_export():
    # One converter: the TorchScript capture and torch.export give the same MIL ops.
    x = torch.randn(2, 3, 8, 8)
    m = _cnn()
    ops = lambda cm: [op.op_type for op in cm.program.functions["main"].block.operations]  # noqa: E731
    assert ops(torch_coreml.export(torch.jit.trace(m, (x,)), (x,))) == ops(torch_coreml.export(m, (x,)))


class AttentionBlock(nn.Module):
    """Pre-norm self-attention + MLP, written out (matmul, softmax, layer norm)."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / (c // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.norm2(x))


def test_traced_attention_block():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    check_conversion(torch.jit.trace(AttentionBlock().eval(), (x,)), (x,))


def test_traced_transformer_encoder_layer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    x = torch.randn(1, 5, 16)
    # check_trace=False: torch's check re-runs under no_grad, where the layer takes its fused fast path
    # (a different graph); the traced graph is the composite one.
    check_conversion(torch.jit.trace(layer, (x,), check_trace=False), (x,))


def test_traced_lstm_returns_nested_tuple():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True).eval()
    x = torch.randn(1, 5, 4)
    # (output, (h, c)): TorchScript flattens this into a list; the converted model restores the tuples.
    check_conversion(torch.jit.trace(lstm, (x,)), (x,))


def test_saved_file_loaded_from_path(tmp_path):
    x = torch.randn(2, 3, 8, 8)
    m = _cnn()
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.trace(m, (x,)), str(path))
    check_conversion(path, (x,), eager=m)
    cm = torch_coreml.export(str(path), (x,), compute_precision="float32")
    torch.testing.assert_close(cm(x), m(x), rtol=1e-4, atol=1e-5)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:          # on a tensor value: becomes torch.cond → MIL cond
            y = self.fc(x)
        else:
            y = x - 1.0
        for i in range(3):       # constant trip count: unrolled
            y = y * 0.5 + i
        for _ in range(x.shape[0]):  # trip count from a static shape: unrolled too
            y = torch.tanh(y)
        return y


def test_scripted_if_on_tensor_and_for_loop():
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    cm = check_conversion(torch.jit.script(Branchy().eval()), (x.abs(),), run_inputs=[(-x.abs(),)])
    assert "cond(" in str(cm.program)


class BranchReturnsInput(nn.Module):
    def forward(self, x, y):
        if bool((x > y).all()):
            out = x
        else:
            out = y * 2.0
        return out


def test_scripted_branch_returning_an_input():
    x, y = torch.ones(2, 3), torch.zeros(2, 3)
    check_conversion(torch.jit.script(BranchReturnsInput()), (x, y), run_inputs=[(y, x)])


class WhileOnValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        steps = torch.zeros(1)
        while bool(x.sum() < 100.0):   # a condition on a tensor value: MIL while_loop
            x = self.fc(x).abs() * 2.0 + 1.0
            steps = steps + 1
        return x, steps


def test_scripted_while_on_tensor_becomes_while_loop():
    torch.manual_seed(0)
    cm = check_conversion(torch.jit.script(WhileOnValue()), (torch.ones(2, 2),),
                          run_inputs=[(torch.full((2, 2), 200.0),), (torch.full((2, 2), 0.1),)])
    assert "while_loop(" in str(cm.program)


class BreakOnValue(nn.Module):
    def forward(self, x):
        for _ in range(10):
            if bool(x.sum() > 100.0):
                break
            x = x * 2.0
        return x


def test_loop_with_data_dependent_break_names_the_construct():
    where = r"prim::Loop at .*test_torchscript.py:\d+ \(`for _ in range\(10\):`\)"
    with pytest.raises(torch_coreml.ConversionError, match=where + r"(.|\n)*torch\.export"):
        torch_coreml.export(torch.jit.script(BreakOnValue()), (torch.ones(2, 2),))


class Flags(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale, self.use_scale = 3, True  # python attributes: constants of the graph
        self.register_buffer("offset", torch.arange(4.0))

    def forward(self, x):
        if self.use_scale:
            x = x * self.scale
        if self.training:  # converted in eval mode
            x = x + 100.0
        return x + self.offset


class TupleInOut(nn.Module):
    def forward(self, xy: Tuple[torch.Tensor, torch.Tensor]):
        x, y = xy
        return (x + y, x * y), torch.cat([x, y], 0)


class ListAndDict(nn.Module):
    def forward(self, x) -> Dict[str, torch.Tensor]:
        parts: List[torch.Tensor] = []
        for i in range(3):
            parts.append(x * i)
        rows = torch.zeros(x.shape[1])
        for r in x:  # iterating a tensor: the trip count is its (static) length
            rows = rows + r.relu()
        return {"stacked": torch.stack(parts), "rows": rows}


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.max() > 1.0:
            return self.fc(x)
        return x.tanh()


class CallsGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()

    def forward(self, x):
        return self.gate(x) * 2.0


def _add_relu(x, y):
    return x.relu() + y


X = torch.randn(3, 4)


@pytest.mark.parametrize("make, inputs, run_inputs", [
    (lambda: torch.jit.script(Flags()), (X,), []),
    (lambda: torch.jit.script(TupleInOut()), ((X, X + 1),), []),
    (lambda: torch.jit.script(ListAndDict()), (X,), []),
    (lambda: torch.jit.script(CallsGate()), (X * 3,), [(X * 0.01,)]),   # `if` inside a submodule
    (lambda: torch.jit.script(_add_relu), (X, X), []),                  # a ScriptFunction
    (lambda: torch.jit.trace(_add_relu, (X, X)), (X, X), []),
], ids=["attributes", "tuple_in_out", "list_and_dict", "submodule_if", "script_function", "traced_function"])
def test_scripted_constructs(make, inputs, run_inputs):
    torch.manual_seed(0)
    check_conversion(make(), inputs, run_inputs=run_inputs)


def test_traced_with_dynamic_batch():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Flatten(1)).eval()
    x = torch.randn(3, 2, 4)
    cm = check_conversion(torch.jit.trace(m, (x,)), (x,), dynamic_shapes=({0: Dim("batch", min=1, max=16)},),
                          run_inputs=[(torch.randn(9, 2, 4),)])
    assert not isinstance(cm.program.functions["main"].inputs[0].type.shape[0], int)


@torch.library.custom_op("tcm_torchscript_test::opaque", mutates_args=())
def _opaque(x: torch.Tensor) -> torch.Tensor:
    return x.sin()


@_opaque.register_fake
def _(x):
    return torch.empty_like(x)


class Unsupported(nn.Module):
    def forward(self, x):
        spectrum = torch.fft.rfft(x, dim=-1)
        return torch.ops.tcm_torchscript_test.opaque(x) + spectrum.real.sum()


def test_unsupported_ops_are_all_listed():
    x = torch.randn(2, 8)
    with pytest.raises(UnsupportedOpsError) as info:
        torch_coreml.export(torch.jit.trace(Unsupported(), (x,)), (x,))
    ops = {n.op: n for n in info.value.nodes}
    assert "tcm_torchscript_test.opaque.default" in ops
    assert any("fft" in op for op in ops), ops
    # The TorchScript source is carried over: the error names the user's line.
    assert "test_torchscript.py" in ops["tcm_torchscript_test.opaque.default"].source


def test_missing_file_is_a_conversion_error(tmp_path):
    with pytest.raises(torch_coreml.ConversionError, match="no TorchScript file"):
        torch_coreml.export(tmp_path / "absent.pt", (torch.ones(1),))
