"""nn.LSTM and nn.GRU (aten.lstm.input / aten.gru.input) as MIL's own recurrent ops, one per layer.

Without these, torch's decomposition unrolls every time step into a dozen ops; MIL's `lstm` and `gru`
take the whole sequence. Gate blocks are reordered for MIL at conversion time (the weights are
constants): torch orders LSTM gates (input, forget, cell, output) where MIL wants (input, forget,
output, cell), and GRU gates (reset, update, new) where MIL wants (reset, new, update).

torch's GRU applies the reset gate after the hidden projection and its bias, r * (W_hn h + b_hn);
only iOS18's `gru` (reset_after=True, with a separate input bias) computes that, so GRU lowers natively
from iOS18 and decomposes before. Before iOS17 MIL's recurrent ops are fp32 only: an fp16 program
casts around them. Refused (and so decomposed): runtime weights, LSTM projections (proj_size), dropout
between layers in training mode.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.targets import Target
from ..registry import lowering

aten = torch.ops.aten

_LSTM_ORDER = (0, 1, 3, 2)  # torch (i, f, g, o) → MIL (i, f, o, g)
_GRU_ORDER = (0, 2, 1)      # torch (r, z, n) → MIL (r, n, z)


def _gates(ctx, var, order, dtype) -> np.ndarray:
    if not var.is_const:
        raise ctx.unsupported("a recurrent layer with runtime weights (MIL needs constant weights)")
    value = np.asarray(var.value, dtype=np.float32)
    blocks = np.split(value, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0).astype(dtype.numpy)


def _layer_params(ctx, params, has_biases, num_layers, directions, what):
    per = 4 if has_biases else 2
    if len(params) != per * num_layers * directions:
        raise ctx.unsupported(f"{what} with {len(params)} parameter tensors for {num_layers} layer(s) "
                              f"× {directions} direction(s) (projections, proj_size > 0, are not supported)")
    return [params[i * per:(i + 1) * per] for i in range(num_layers * directions)]


def _sequence_first(ctx, input, batch_first):
    """[T, B, I] from the (batch-first or unbatched) input; returns it and how to undo the layout."""
    x = input
    unbatched = input.rank == 2
    if unbatched:
        x = ctx.b.op("expand_dims", x=x, axes=[1])
    elif batch_first:
        x = ctx.b.op("transpose", x=x, perm=[1, 0, 2])
    return x, unbatched


def _restore_layout(ctx, seq, unbatched, batch_first):
    if unbatched:
        return ctx.b.op("squeeze", x=seq, axes=[1])
    if batch_first:
        return ctx.b.op("transpose", x=seq, perm=[1, 0, 2])
    return seq


def _state(ctx, hx, index, unbatched):
    """Initial state of one layer/direction: row `index` of [L*D, B, H] (or of [L*D, H] unbatched)."""
    h = ctx.b.op("gather", x=hx, indices=ctx.const(np.int32(index)), axis=0)
    return ctx.b.op("expand_dims", x=h, axes=[0]) if unbatched else h


def _stack_states(ctx, states, unbatched):
    stacked = ctx.b.op("stack", values=states, axis=0) if len(states) > 1 else \
        ctx.b.op("expand_dims", x=states[0], axes=[0])
    return ctx.b.op("squeeze", x=stacked, axes=[1]) if unbatched else stacked


def _compute_dtype(ctx):
    # lstm/gru take fp16 from iOS17 on.
    return ctx.float_dtype if ctx.target >= Target.iOS17 else dt.fp32


def _check_mode(ctx, dropout, train, num_layers, what):
    if train and dropout and num_layers > 1:
        raise ctx.unsupported(f"{what} dropout between layers in training mode")


@lowering(aten.lstm.input)
def lstm(ctx, input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    """lstm.input(Tensor input, Tensor[] hx, Tensor[] params, bool has_biases, int num_layers,
    float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor, Tensor)"""
    _check_mode(ctx, dropout, train, num_layers, "LSTM")
    directions = 2 if bidirectional else 1
    layers = _layer_params(ctx, params, has_biases, num_layers, directions, "LSTM")
    dtype = _compute_dtype(ctx)
    out_dtype = input.dtype
    x, unbatched = _sequence_first(ctx, ctx.cast(input, dtype), batch_first)
    h0, c0 = (ctx.cast(s, dtype) for s in hx)
    h_out, c_out = [], []
    for layer in range(num_layers):
        weights = {}
        for d, suffix in enumerate(("", "_back")[:directions]):
            p = layers[layer * directions + d]
            weights["weight_ih" + suffix] = ctx.const(_gates(ctx, p[0], _LSTM_ORDER, dtype), dtype)
            weights["weight_hh" + suffix] = ctx.const(_gates(ctx, p[1], _LSTM_ORDER, dtype), dtype)
            if has_biases:
                bias = _gates(ctx, p[2], _LSTM_ORDER, dt.fp32) + _gates(ctx, p[3], _LSTM_ORDER, dt.fp32)
                weights["bias" + suffix] = ctx.const(bias.astype(dtype.numpy), dtype)
        rows = [layer * directions + d for d in range(directions)]
        h_init = [_state(ctx, h0, r, unbatched) for r in rows]
        c_init = [_state(ctx, c0, r, unbatched) for r in rows]
        if directions == 2:
            h_init = [ctx.b.op("concat", values=h_init, axis=-1)]
            c_init = [ctx.b.op("concat", values=c_init, axis=-1)]
        x, h, c = ctx.b.op("lstm", x=x, initial_h=h_init[0], initial_c=c_init[0],
                           direction="bidirectional" if directions == 2 else "forward",
                           output_sequence=True, **weights)
        if directions == 2:
            h_out += list(ctx.b.op("split", x=h, num_splits=2, axis=-1))
            c_out += list(ctx.b.op("split", x=c, num_splits=2, axis=-1))
        else:
            h_out.append(h)
            c_out.append(c)
    seq = _restore_layout(ctx, x, unbatched, batch_first)
    results = (seq, _stack_states(ctx, h_out, unbatched), _stack_states(ctx, c_out, unbatched))
    return tuple(ctx.cast(r, out_dtype) for r in results)


@lowering(aten.gru.input)
def gru(ctx, input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    """gru.input(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers,
    float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)"""
    if ctx.target < Target.iOS18:
        raise ctx.unsupported("torch's GRU (reset gate after the hidden projection) needs iOS18's gru")
    _check_mode(ctx, dropout, train, num_layers, "GRU")
    directions = 2 if bidirectional else 1
    layers = _layer_params(ctx, params, has_biases, num_layers, directions, "GRU")
    dtype = ctx.float_dtype
    out_dtype = input.dtype
    x, unbatched = _sequence_first(ctx, ctx.cast(input, dtype), batch_first)
    h0 = ctx.cast(hx, dtype)
    h_out = []
    for layer in range(num_layers):
        outputs = []
        for d in range(directions):
            p = layers[layer * directions + d]
            weights = dict(weight_ih=ctx.const(_gates(ctx, p[0], _GRU_ORDER, dtype), dtype),
                           weight_hh=ctx.const(_gates(ctx, p[1], _GRU_ORDER, dtype), dtype))
            if has_biases:
                weights["input_bias"] = ctx.const(_gates(ctx, p[2], _GRU_ORDER, dtype), dtype)
                weights["bias"] = ctx.const(_gates(ctx, p[3], _GRU_ORDER, dtype), dtype)
            seq, h = ctx.b.op("gru", x=x, initial_h=_state(ctx, h0, layer * directions + d, unbatched),
                              direction="reverse" if d else "forward", output_sequence=True,
                              reset_after=True, **weights)
            if d:  # a reverse pass emits its states last step first
                seq = ctx.b.op("reverse", x=seq, axes=[0])
            outputs.append(seq)
            h_out.append(h)
        x = outputs[0] if directions == 1 else ctx.b.op("concat", values=outputs, axis=-1)
    seq = _restore_layout(ctx, x, unbatched, batch_first)
    return ctx.cast(seq, out_dtype), ctx.cast(_stack_states(ctx, h_out, unbatched), out_dtype)
