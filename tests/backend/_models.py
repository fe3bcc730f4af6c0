"""Small models and a test-only custom op for the torch.compile backend tests.

`coreml_test::opaque` has no lowering, so it always runs in PyTorch; `coreml_test::broken` gets a
deliberately wrong lowering (it passes the support dry run, then produces the wrong shape in the
real conversion), so its region fails to convert.
"""

from __future__ import annotations

import torch

from tests.tolerances import TOLERANCES

FP32 = {"compute_precision": "float32"}


@torch.library.custom_op("coreml_test::opaque", mutates_args=())
def opaque(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


@opaque.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("coreml_test::broken", mutates_args=())
def broken(x: torch.Tensor) -> torch.Tensor:
    return x.sum(-1)


@broken.register_fake
def _(x):
    return x.new_empty(x.shape[:-1])


def broken_lowering(ctx, x):
    """broken(Tensor x) -> Tensor; wrong on purpose: returns x whole instead of its row sums."""
    return ctx.b.op("identity", x=x)


class MLP(torch.nn.Module):
    def __init__(self, d_in=4, hidden=8, d_out=3):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(d_in, hidden), torch.nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


class OpaqueInTheMiddle(torch.nn.Module):
    """Core ML → PyTorch (opaque) → Core ML: two partitions."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        return torch.sigmoid(self.fc2(opaque(torch.relu(self.fc1(x)))))


class TwoOpaque(torch.nn.Module):
    """Three Core ML partitions separated by two PyTorch ops."""

    def __init__(self):
        super().__init__()
        self.fcs = torch.nn.ModuleList(torch.nn.Linear(6, 6) for _ in range(3))

    def forward(self, x):
        x = torch.tanh(self.fcs[0](x))
        x = torch.tanh(self.fcs[1](opaque(x)))
        return self.fcs[2](opaque(x)) * 0.5


class WithBroken(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return broken(torch.relu(self.fc(x))) + 1


class GraphBreaks(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        h = self.fc1(x)
        if h.sum() > 0:  # data-dependent Python control flow: a graph break
            h = h * 2
        else:
            h = h - 1
        print("graph break")  # another one
        return self.fc2(torch.relu(h))


def assert_close(got, expected, precision="float32"):
    torch.testing.assert_close(got, expected, **TOLERANCES[precision])
