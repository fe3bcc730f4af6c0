"""nn.LSTM / nn.GRU lower to MIL's own lstm / gru ops (not an unrolled sequence) and match eager."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tests.lowering._check import check_conversion


class Recurrent(torch.nn.Module):
    def __init__(self, cell: str, **kwargs):
        super().__init__()
        self.rnn = getattr(torch.nn, cell)(**kwargs)

    def forward(self, x, *state):
        return self.rnn(x, *state)


def _ops(cm) -> Counter:
    return Counter(op.op_type for op in cm.program.functions["main"].block.walk() if op.op_type != "const")


CONFIGS = {
    "two_layers": dict(num_layers=2),
    "bidirectional_batch_first": dict(bidirectional=True, batch_first=True),
    "bidirectional_two_layers": dict(bidirectional=True, num_layers=2),
    "no_bias": dict(bias=False),
}


def _model(cell, config):
    torch.manual_seed(0)
    return Recurrent(cell, input_size=5, hidden_size=6, **CONFIGS[config]).eval()


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_lstm_is_one_mil_lstm_per_layer(config):
    model = _model("LSTM", config)
    x = torch.randn(4, 3, 5)
    cm = check_conversion(model, (x,), target="iOS16")
    ops = _ops(cm)
    assert ops["lstm"] == model.rnn.num_layers
    assert sum(ops.values()) <= 6 * model.rnn.num_layers + 3, ops  # no unrolled time steps


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_gru_is_one_mil_gru_per_layer_and_direction_on_ios18(config):
    model = _model("GRU", config)
    cm = check_conversion(model, (torch.randn(4, 3, 5),), target="iOS18")
    directions = 2 if model.rnn.bidirectional else 1
    assert _ops(cm)["gru"] == model.rnn.num_layers * directions


def test_gru_before_ios18_decomposes_and_still_matches():
    # torch's GRU applies the reset gate after the hidden projection: only iOS18's gru has that form.
    cm = check_conversion(_model("GRU", "two_layers"), (torch.randn(4, 3, 5),), target="iOS17")
    assert "gru" not in _ops(cm)


def test_lstm_with_given_states_returns_them_updated():
    model = _model("LSTM", "bidirectional_two_layers")
    x, h, c = torch.randn(4, 3, 5), torch.randn(4, 3, 6), torch.randn(4, 3, 6)
    check_conversion(model, (x, (h, c)), target="iOS17")


def test_gru_with_given_state_batch_first():
    model = _model("GRU", "bidirectional_batch_first")
    check_conversion(model, (torch.randn(3, 4, 5), torch.randn(2, 3, 6)), target="iOS18")


def test_unbatched_sequences():
    check_conversion(_model("LSTM", "two_layers"), (torch.randn(4, 5),), target="iOS17")
    check_conversion(_model("GRU", "no_bias"), (torch.randn(4, 5),), target="iOS18")


@pytest.mark.parametrize("target", ["iOS16", "iOS17"])
def test_lstm_in_a_float16_program(target):
    # Before iOS17 MIL's lstm is fp32 only: the fp16 program casts around it.
    cm = check_conversion(_model("LSTM", "two_layers"), (torch.randn(4, 3, 5),), precision="float16",
                          target=target)
    assert _ops(cm)["lstm"] == 2


def test_lstm_with_projections_decomposes():
    torch.manual_seed(0)
    model = Recurrent("LSTM", input_size=5, hidden_size=6, proj_size=3).eval()
    cm = check_conversion(model, (torch.randn(4, 3, 5),), target="iOS17")
    assert "lstm" not in _ops(cm)
