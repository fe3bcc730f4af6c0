"""torch.cond and while_loop (higher-order ops) under torch.export → MIL cond / while_loop."""

from __future__ import annotations

import torch
from torch import nn
from torch._higher_order_ops.while_loop import while_loop

from tests.lowering._check import check_conversion


class CondModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.cond(x.mean() > 0, lambda x: self.fc(x).relu(), lambda x: x.flip(0) * 3.0, (x,))


def test_cond_branches_become_mil_blocks():
    torch.manual_seed(0)
    x = torch.randn(3, 4).abs()
    cm = check_conversion(CondModel(), (x,), run_inputs=[(-x,)])
    assert "cond(" in str(cm.program)


class Doubling(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        # The parameter is an additional input: read from outside the loop blocks.
        return while_loop(lambda x: x.sum() < 100.0, lambda x: (x * self.scale,), (x,))[0]


def test_while_loop_becomes_mil_while_loop():
    cm = check_conversion(Doubling(), (torch.ones(2, 2),),
                          run_inputs=[(torch.full((2, 2), 30.0),), (torch.full((2, 2), 0.01),)])
    assert "while_loop(" in str(cm.program)
