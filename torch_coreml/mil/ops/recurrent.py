"""Recurrent layers: `rnn`, `gru` and `lstm` over a whole sequence (one layer).

Shapes: x [S, B, I] (sequence first); hidden states [B, H]. Outputs: all hidden states [S, B, H] when
`output_sequence` is true, else the last one as [1, B, H]; then the final hidden state [B, H] (and
for lstm the final cell state). Direction `reverse` walks the sequence backwards and emits the states
in the order computed (the first output row belongs to the last time step). lstm `bidirectional`
runs both ways and concatenates forward and backward features (the backward states re-aligned to
their time steps), giving 2*H features.

Weight layouts (rows are gate blocks of H; W_* multiply x, R_* multiply the hidden state):
    gru   weight_ih = [W_r; W_o; W_z], weight_hh = [R_r; R_o; R_z]        (reset, output/new, update)
    lstm  weight_ih = [W_i; W_f; W_o; W_z], weight_hh likewise             (input, forget, output, cell)
          peephole = [p_i; p_f; p_o]
    rnn   weight_ih [H, I], weight_hh [H, H]
`bias` is the sum of the input and hidden biases in the same gate order (iOS18 gru splits it, below).

Activations (case-insensitive): sigmoid, tanh, relu, linear, scaled_tanh (alpha = beta = 1, i.e. tanh)
and hard_sigmoid (also spelled sigmoid_hard): min(max(0.2 x + 0.5, 0), 1).
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .spec import In, mil_op

_ACTIVATIONS = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "scaled_tanh": torch.tanh, "relu": torch.relu,
    "linear": lambda v: v,
    "hard_sigmoid": lambda v: (0.2 * v + 0.5).clamp(0, 1),
    "sigmoid_hard": lambda v: (0.2 * v + 0.5).clamp(0, 1),
}


def _act(name: str):
    return _ACTIVATIONS[name.lower()]


# -- type inference ---------------------------------------------------------------------------------
def _check_activation(ctx, name: str):
    val = ctx.param(name)
    if val.lower() not in _ACTIVATIONS:
        raise ctx.error(f"input {name!r} must be one of {sorted(_ACTIVATIONS)}, got {val!r}")


def _check_weights(ctx, ih: str, hh: str, gates: int) -> int:
    """Checks weight ranks and gate counts; returns the hidden size H."""
    for n in (ih, hh):
        if ctx.rank(n) != 2:
            raise ctx.error(f"input {n!r} must have rank 2, got {ctx.type(n)}")
    h = ctx.shape(hh)[1]
    for n in (ih, hh):
        rows = ctx.shape(n)[0]
        if isinstance(rows, int) and isinstance(h, int) and rows != gates * h:
            raise ctx.error(f"input {n!r} must have {gates}*H = {gates * h} rows (H = {h} from "
                            f"'{hh}'), got {ctx.shape(n)}")
    return h


def _recurrent_types(ctx, hidden, n_states: int):
    if ctx.rank("x") != 3:
        raise ctx.error(f"input 'x' must have rank 3 [seq, batch, features], got {ctx.type('x')}")
    s, b, _ = ctx.shape("x")
    dtype = ctx.dtype("x")
    out = TensorType(dtype, (s if ctx.param("output_sequence") else 1, b, hidden))
    return [out] + [TensorType(dtype, (b, hidden))] * n_states


def _check_direction(ctx, allowed):
    d = ctx.param("direction")
    if d not in allowed:
        raise ctx.error(f"input 'direction' must be one of {list(allowed)}, got {d!r}")
    return d


def _infer_rnn(ctx):
    _check_direction(ctx, ("forward", "reverse"))
    _check_activation(ctx, "activation")
    return _recurrent_types(ctx, _check_weights(ctx, "weight_ih", "weight_hh", 1), 1)


def _infer_gru(ctx):
    _check_direction(ctx, ("forward", "reverse"))
    for n in ("activation", "recurrent_activation"):
        _check_activation(ctx, n)
    return _recurrent_types(ctx, _check_weights(ctx, "weight_ih", "weight_hh", 3), 1)


def _infer_lstm(ctx):
    d = _check_direction(ctx, ("forward", "reverse", "bidirectional"))
    for n in ("activation", "recurrent_activation", "cell_activation"):
        _check_activation(ctx, n)
    h = _check_weights(ctx, "weight_ih", "weight_hh", 4)
    if d == "bidirectional":
        if not (ctx.has("weight_ih_back") and ctx.has("weight_hh_back")):
            raise ctx.error("a bidirectional lstm needs inputs 'weight_ih_back' and 'weight_hh_back'")
        _check_weights(ctx, "weight_ih_back", "weight_hh_back", 4)
        h = 2 * h if isinstance(h, int) else h
    return _recurrent_types(ctx, h, 2)


# -- kernels ----------------------------------------------------------------------------------------
def _finish(states: list, h_last, output_sequence: bool):
    seq = torch.stack(states) if output_sequence else h_last[None]
    return seq, h_last


def _zeros_bias(weight, rows=None):
    return weight.new_zeros(rows or weight.shape[0])


def _check_steps(x):
    if x.shape[0] == 0:
        raise ValueError("recurrent op: the sequence is empty")


_COMMON = [
    In("direction", (dt.string,), const=True, optional=True, default="forward", param=True),
    In("output_sequence", (dt.bool_,), const=True, optional=True, default=False, param=True)]


def _rnn_inputs():
    return [In("x", "T"), In("initial_h", "T"), In("weight_ih", "T", const=True),
            In("weight_hh", "T", const=True), In("bias", "T", const=True, optional=True), *_COMMON,
            In("activation", (dt.string,), const=True, optional=True, default="tanh", param=True)]


@mil_op("rnn", domains={"T": (dt.fp32,)}, inputs=_rnn_inputs(), infer=_infer_rnn)
@mil_op("rnn", since=Target.iOS17, domains={"T": (dt.fp16, dt.fp32)}, inputs=_rnn_inputs(), infer=_infer_rnn)
def rnn(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence, activation):
    """Simple recurrent layer: h_t = activation(W_ih x_t + W_hh h_{t-1} + bias). (iOS17 adds fp16.)"""
    _check_steps(x)
    act = _act(activation)
    xs = x.flip(0) if direction == "reverse" else x
    pre = xs @ weight_ih.T + (_zeros_bias(weight_ih) if bias is None else bias)
    h, states = initial_h, []
    for t in range(xs.shape[0]):
        h = act(pre[t] + h @ weight_hh.T)
        states.append(h)
    return _finish(states, h, output_sequence)


def _gru_inputs(ios18: bool = False):
    extra = [In("reset_after", (dt.bool_,), const=True, optional=True, default=False, param=True),
             In("input_bias", "T", const=True, optional=True)] if ios18 else []
    return [In("x", "T"), In("initial_h", "T"), In("weight_ih", "T", const=True),
            In("weight_hh", "T", const=True), In("bias", "T", const=True, optional=True), *_COMMON,
            In("recurrent_activation", (dt.string,), const=True, optional=True, default="sigmoid",
               param=True),
            In("activation", (dt.string,), const=True, optional=True, default="tanh", param=True),
            *extra]


def _gru(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence, recurrent_activation,
         activation, reset_after=False, input_bias=None):
    _check_steps(x)
    ra, act = _act(recurrent_activation), _act(activation)
    xs = x.flip(0) if direction == "reverse" else x
    b_in = _zeros_bias(weight_ih) if input_bias is None else input_bias
    b_hid = _zeros_bias(weight_ih) if bias is None else bias
    pre = xs @ weight_ih.T + b_in                               # [S, B, 3H] as (r, o, z)
    r_r, r_o, r_z = weight_hh.chunk(3)
    b_r, b_o, b_z = b_hid.chunk(3)
    h, states = initial_h, []
    for t in range(xs.shape[0]):
        x_r, x_o, x_z = pre[t].chunk(3, dim=-1)
        r = ra(x_r + h @ r_r.T + b_r)
        z = ra(x_z + h @ r_z.T + b_z)
        if reset_after:
            o = act(x_o + r * (h @ r_o.T + b_o))
        else:
            o = act(x_o + (r * h) @ r_o.T + b_o)
        h = (1 - z) * o + z * h
        states.append(h)
    return _finish(states, h, output_sequence)


@mil_op("gru", domains={"T": (dt.fp32,)}, inputs=_gru_inputs(), infer=_infer_gru)
@mil_op("gru", since=Target.iOS17, domains={"T": (dt.fp16, dt.fp32)}, inputs=_gru_inputs(),
        infer=_infer_gru)
def gru(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence, recurrent_activation,
        activation):
    """Gated recurrent unit, the reset gate applied to the hidden state before its product:
    r = ra(W_r x + R_r h + b_r), z = ra(W_z x + R_z h + b_z), o = act(W_o x + R_o (r * h) + b_o),
    h' = (1 - z) * o + z * h; ra = recurrent_activation. (iOS17 adds fp16.)"""
    return _gru(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence,
                recurrent_activation, activation)


@mil_op("gru", since=Target.iOS18, domains={"T": (dt.fp16, dt.fp32)}, inputs=_gru_inputs(True),
        infer=_infer_gru)
def gru_ios18(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence,
              recurrent_activation, activation, reset_after, input_bias):
    """As iOS17 `gru`, with `input_bias` (added to W x) apart from `bias` (added to R h), and
    `reset_after`: o = act(W_o x + b_io + r * (R_o h + b_o)), which is torch.nn.GRU's form."""
    return _gru(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence,
                recurrent_activation, activation, reset_after, input_bias)


def _lstm_inputs():
    opt = dict(const=True, optional=True)
    return [In("x", "T"), In("initial_h", "T"), In("initial_c", "T"),
            In("weight_ih", "T", const=True), In("weight_hh", "T", const=True),
            In("bias", "T", **opt), In("peephole", "T", **opt),
            In("weight_ih_back", "T", **opt), In("weight_hh_back", "T", **opt),
            In("bias_back", "T", **opt), In("peephole_back", "T", **opt), *_COMMON,
            In("recurrent_activation", (dt.string,), default="sigmoid", param=True, **opt),
            In("cell_activation", (dt.string,), default="tanh", param=True, **opt),
            In("activation", (dt.string,), default="tanh", param=True, **opt),
            In("clip", "T", param=True, **opt)]


def _lstm_pass(xs, h, c, w_ih, w_hh, bias, peephole, clip, ra, ca, act):
    """One direction over xs in order; returns (states, h, c)."""
    hidden = w_hh.shape[1]
    pre = xs @ w_ih.T + (_zeros_bias(w_ih) if bias is None else bias)     # [S, B, 4H] (i, f, o, z)
    p_i, p_f, p_o = (_zeros_bias(w_ih, 3 * hidden) if peephole is None else peephole).chunk(3)
    states = []
    for t in range(xs.shape[0]):
        g_i, g_f, g_o, g_z = (pre[t] + h @ w_hh.T).chunk(4, dim=-1)
        i, f = ra(g_i + c * p_i), ra(g_f + c * p_f)
        c = f * c + i * ca(g_z)
        if clip is not None:
            c = c.clamp(-clip, clip)
        h = ra(g_o + c * p_o) * act(c)
        states.append(h)
    return states, h, c


@mil_op("lstm", domains={"T": (dt.fp32,)}, inputs=_lstm_inputs(), infer=_infer_lstm)
@mil_op("lstm", since=Target.iOS17, domains={"T": (dt.fp16, dt.fp32)}, inputs=_lstm_inputs(),
        infer=_infer_lstm)
def lstm(x, initial_h, initial_c, weight_ih, weight_hh, bias, peephole, weight_ih_back,
         weight_hh_back, bias_back, peephole_back, direction, output_sequence, recurrent_activation,
         cell_activation, activation, clip):
    """Long short-term memory: i = ra(W_i x + R_i h + b_i + p_i * c), f likewise with c,
    c' = f * c + i * cell_activation(W_z x + R_z h + b_z), clipped to [-clip, clip] when given,
    o = ra(W_o x + R_o h + b_o + p_o * c'), h' = o * activation(c'); ra = recurrent_activation.
    Bidirectional: initial states hold [forward | backward] halves, the *_back weights drive the
    backward pass. (iOS17 adds fp16.)"""
    _check_steps(x)
    fns = (_act(recurrent_activation), _act(cell_activation), _act(activation))
    if direction != "bidirectional":
        xs = x.flip(0) if direction == "reverse" else x
        states, h, c = _lstm_pass(xs, initial_h, initial_c, weight_ih, weight_hh, bias, peephole,
                                  clip, *fns)
        seq, h = _finish(states, h, output_sequence)
        return seq, h, c
    hid = weight_hh.shape[1]
    fw, h_f, c_f = _lstm_pass(x, initial_h[:, :hid], initial_c[:, :hid], weight_ih, weight_hh, bias,
                              peephole, clip, *fns)
    bw, h_b, c_b = _lstm_pass(x.flip(0), initial_h[:, hid:], initial_c[:, hid:], weight_ih_back,
                              weight_hh_back, bias_back, peephole_back, clip, *fns)
    h, c = torch.cat([h_f, h_b], -1), torch.cat([c_f, c_b], -1)
    if output_sequence:
        seq = torch.cat([torch.stack(fw), torch.stack(bw).flip(0)], -1)
    else:
        seq = h[None]
    return seq, h, c
