"""Recurrent ops (rnn, gru, lstm) against coremltools (declarations, versions, types) and against
torch.nn.RNN / GRU / LSTM with their weights rearranged into MIL's gate order. Variants torch lacks
(gru with the reset gate before the product, peepholes, clipping, other activations) are checked
against the recurrence written out in numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.mil.ops._eval import run_op
from tests.mil.ops.test_control_flow import assert_same_declaration, assert_same_types, ct_versions, evaluate
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.types import Symbol, tensor

f32, f16 = np.float32, np.float16
S, B, I, H = 4, 3, 5, 6
_rng = np.random.default_rng(3)


def rand(*shape):
    return _rng.uniform(-1, 1, size=shape).astype(f32)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- declarations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["rnn", "gru", "lstm"])
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_versions(op)


@pytest.mark.parametrize("op,target", [(op, s.since.name) for op in ["rnn", "gru", "lstm"]
                                       for s in CATALOGUE.versions(op)])
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


# -- type inference ---------------------------------------------------------------------------------
def _w(rows, cols, dtype=f32):
    return rand(rows, cols).astype(dtype)


TYPE_CASES = [
    ("rnn", {"x": ((S, B, I), "fp32"), "initial_h": ((B, H), "fp32")},
     {"weight_ih": _w(H, I), "weight_hh": _w(H, H)}, "iOS15"),
    ("rnn", {"x": (("s", "b", I), "fp16"), "initial_h": (("b", H), "fp16")},
     {"weight_ih": _w(H, I, f16), "weight_hh": _w(H, H, f16), "output_sequence": True,
      "direction": "reverse", "activation": "relu"}, "iOS17"),
    ("gru", {"x": (("s", "b", I), "fp32"), "initial_h": (("b", H), "fp32")},
     {"weight_ih": _w(3 * H, I), "weight_hh": _w(3 * H, H), "output_sequence": True}, "iOS15"),
    ("gru", {"x": ((S, B, I), "fp16"), "initial_h": ((B, H), "fp16")},
     {"weight_ih": _w(3 * H, I, f16), "weight_hh": _w(3 * H, H, f16), "bias": rand(3 * H).astype(f16)},
     "iOS17"),
    ("gru", {"x": ((S, "b", I), "fp32"), "initial_h": (("b", H), "fp32")},
     {"weight_ih": _w(3 * H, I), "weight_hh": _w(3 * H, H), "reset_after": True,
      "input_bias": rand(3 * H), "output_sequence": True}, "iOS18"),
    ("lstm", {"x": (("s", "b", I), "fp32"), "initial_h": (("b", H), "fp32"), "initial_c": (("b", H), "fp32")},
     {"weight_ih": _w(4 * H, I), "weight_hh": _w(4 * H, H), "peephole": rand(3 * H), "clip": f32(3)}, "iOS15"),
    ("lstm", {"x": ((S, B, I), "fp16"), "initial_h": ((B, 2 * H), "fp16"), "initial_c": ((B, 2 * H), "fp16")},
     {"weight_ih": _w(4 * H, I, f16), "weight_hh": _w(4 * H, H, f16), "weight_ih_back": _w(4 * H, I, f16),
      "weight_hh_back": _w(4 * H, H, f16), "direction": "bidirectional", "output_sequence": True}, "iOS17"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_types_match_coremltools(op, inputs, consts, target):
    assert_same_types(op, inputs, consts, target)


# -- values against torch.nn ------------------------------------------------------------------------
def _run(op, target, x, consts, **states):
    return run_op(op, target, consts=consts, x=x, **states)[0]


def _check(got, want, dtype):
    tol = 1e-5 if dtype == f32 else 2e-2
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.float().numpy(), w, rtol=tol, atol=tol)


def _sd(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


CONFIGS = [(d, seq, dtype) for d in ("forward", "reverse") for seq in (True, False) for dtype in (f32, f16)]


def _target(dtype):
    return "iOS15" if dtype == f32 else "iOS17"


@pytest.mark.parametrize("direction,output_sequence,dtype", CONFIGS)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_torch(direction, output_sequence, dtype, nonlinearity):
    torch.manual_seed(0)
    m = torch.nn.RNN(I, H, nonlinearity=nonlinearity)
    sd = _sd(m)
    x, h0 = rand(S, B, I), rand(B, H)
    xs = x[::-1].copy() if direction == "reverse" else x  # MIL emits reverse states in computed order
    y, hn = m(torch.from_numpy(xs), torch.from_numpy(h0[None]))
    want = [y.detach().numpy() if output_sequence else y.detach().numpy()[-1:], hn.detach().numpy()[0]]
    consts = {"weight_ih": sd["weight_ih_l0"].astype(dtype), "weight_hh": sd["weight_hh_l0"].astype(dtype),
              "bias": (sd["bias_ih_l0"] + sd["bias_hh_l0"]).astype(dtype), "direction": direction,
              "output_sequence": output_sequence, "activation": nonlinearity}
    _check(_run("rnn", _target(dtype), x.astype(dtype), consts, initial_h=h0.astype(dtype)), want, dtype)


def _ifzo_to_ifoz(a):
    i, f, z, o = np.split(a, 4)
    return np.concatenate([i, f, o, z])


@pytest.mark.parametrize("direction,output_sequence,dtype", CONFIGS)
def test_lstm_matches_torch(direction, output_sequence, dtype):
    torch.manual_seed(1)
    m = torch.nn.LSTM(I, H)
    sd = _sd(m)
    x, h0, c0 = rand(S, B, I), rand(B, H), rand(B, H)
    xs = x[::-1].copy() if direction == "reverse" else x
    y, (hn, cn) = m(torch.from_numpy(xs), (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
    y = y.detach().numpy()
    want = [y if output_sequence else y[-1:], hn.detach().numpy()[0], cn.detach().numpy()[0]]
    consts = {"weight_ih": _ifzo_to_ifoz(sd["weight_ih_l0"]).astype(dtype),
              "weight_hh": _ifzo_to_ifoz(sd["weight_hh_l0"]).astype(dtype),
              "bias": _ifzo_to_ifoz(sd["bias_ih_l0"] + sd["bias_hh_l0"]).astype(dtype),
              "direction": direction, "output_sequence": output_sequence}
    got = _run("lstm", _target(dtype), x.astype(dtype), consts, initial_h=h0.astype(dtype),
               initial_c=c0.astype(dtype))
    _check(got, want, dtype)


@pytest.mark.parametrize("output_sequence", [True, False])
@pytest.mark.parametrize("dtype", [f32, f16])
def test_bidirectional_lstm_matches_torch(output_sequence, dtype):
    torch.manual_seed(2)
    m = torch.nn.LSTM(I, H, bidirectional=True)
    sd = _sd(m)
    x, h0, c0 = rand(S, B, I), rand(2, B, H), rand(2, B, H)
    y, (hn, cn) = m(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    y = y.detach().numpy()
    last = np.concatenate([y[-1:, :, :H], y[:1, :, H:]], -1)  # each direction's final state
    both = lambda t: np.concatenate([t[0], t[1]], -1)  # noqa: E731  [2, B, H] -> [B, 2H]
    want = [y if output_sequence else last, both(hn.detach().numpy()), both(cn.detach().numpy())]
    w = lambda k: _ifzo_to_ifoz(sd[k]).astype(dtype)  # noqa: E731
    consts = {"weight_ih": w("weight_ih_l0"), "weight_hh": w("weight_hh_l0"),
              "bias": _ifzo_to_ifoz(sd["bias_ih_l0"] + sd["bias_hh_l0"]).astype(dtype),
              "weight_ih_back": w("weight_ih_l0_reverse"), "weight_hh_back": w("weight_hh_l0_reverse"),
              "bias_back": _ifzo_to_ifoz(sd["bias_ih_l0_reverse"] + sd["bias_hh_l0_reverse"]).astype(dtype),
              "direction": "bidirectional", "output_sequence": output_sequence}
    got = _run("lstm", _target(dtype), x.astype(dtype), consts, initial_h=both(h0).astype(dtype),
               initial_c=both(c0).astype(dtype))
    _check(got, want, dtype)


def _rzn_to_roz(a):
    r, z, n = np.split(a, 3)
    return np.concatenate([r, n, z])


@pytest.mark.parametrize("direction,output_sequence,dtype", CONFIGS)
def test_gru_reset_after_matches_torch(direction, output_sequence, dtype):
    torch.manual_seed(3)
    m = torch.nn.GRU(I, H)
    sd = _sd(m)
    x, h0 = rand(S, B, I), rand(B, H)
    xs = x[::-1].copy() if direction == "reverse" else x
    y, hn = m(torch.from_numpy(xs), torch.from_numpy(h0[None]))
    y = y.detach().numpy()
    want = [y if output_sequence else y[-1:], hn.detach().numpy()[0]]
    consts = {"weight_ih": _rzn_to_roz(sd["weight_ih_l0"]).astype(dtype),
              "weight_hh": _rzn_to_roz(sd["weight_hh_l0"]).astype(dtype),
              "input_bias": _rzn_to_roz(sd["bias_ih_l0"]).astype(dtype),
              "bias": _rzn_to_roz(sd["bias_hh_l0"]).astype(dtype),
              "reset_after": True, "direction": direction, "output_sequence": output_sequence}
    _check(_run("gru", "iOS18", x.astype(dtype), consts, initial_h=h0.astype(dtype)), want, dtype)


# -- values against the written-out recurrences -----------------------------------------------------
ACTS = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
        "linear": lambda v: v, "scaled_tanh": np.tanh, "hard_sigmoid": lambda v: np.clip(0.2 * v + 0.5, 0, 1)}


def _gru_ref(x, h, w_ih, w_hh, b_in, b_hid, ra, act, reset_after):
    """MIL gate order (r, o, z); returns all states."""
    (w_r, w_o, w_z), (r_r, r_o, r_z) = np.split(w_ih, 3), np.split(w_hh, 3)
    (bi_r, bi_o, bi_z), (bh_r, bh_o, bh_z) = np.split(b_in, 3), np.split(b_hid, 3)
    out = []
    for xt in x:
        r = ACTS[ra](xt @ w_r.T + bi_r + h @ r_r.T + bh_r)
        z = ACTS[ra](xt @ w_z.T + bi_z + h @ r_z.T + bh_z)
        hid = r * (h @ r_o.T + bh_o) if reset_after else (r * h) @ r_o.T + bh_o
        o = ACTS[act](xt @ w_o.T + bi_o + hid)
        h = (1 - z) * o + z * h
        out.append(h)
    return np.stack(out)


GRU_CASES = [  # target, dtype, activations (recurrent, activation), reset_after, biases
    ("iOS15", f32, ("sigmoid", "tanh"), False, "bias"),
    ("iOS15", f32, ("hard_sigmoid", "relu"), False, None),
    ("iOS17", f16, ("sigmoid", "tanh"), False, "bias"),
    ("iOS18", f32, ("sigmoid", "tanh"), False, "both"),
    ("iOS18", f32, ("tanh", "linear"), True, "input_bias"),
]


@pytest.mark.parametrize("target,dtype,acts,reset_after,biases", GRU_CASES)
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_gru_matches_recurrence(target, dtype, acts, reset_after, biases, direction):
    x, h0 = rand(S, B, I), rand(B, H)
    w_ih, w_hh = rand(3 * H, I), rand(3 * H, H)
    b_in = rand(3 * H) if biases in ("both", "input_bias") else np.zeros(3 * H, f32)
    b_hid = rand(3 * H) if biases in ("both", "bias") else np.zeros(3 * H, f32)
    want = _gru_ref(x[::-1] if direction == "reverse" else x, h0, w_ih, w_hh, b_in, b_hid, *acts, reset_after)
    consts = {"weight_ih": w_ih.astype(dtype), "weight_hh": w_hh.astype(dtype), "direction": direction,
              "output_sequence": True, "recurrent_activation": acts[0], "activation": acts[1]}
    if biases in ("both", "bias"):
        consts["bias"] = b_hid.astype(dtype)
    if biases in ("both", "input_bias"):
        consts["input_bias"] = b_in.astype(dtype)
    if target == "iOS18":
        consts["reset_after"] = reset_after
    _check(_run("gru", target, x.astype(dtype), consts, initial_h=h0.astype(dtype)), [want, want[-1]], dtype)


@pytest.mark.parametrize("acts", [("sigmoid", "tanh", "tanh"), ("hard_sigmoid", "relu", "scaled_tanh"),
                                  ("sigmoid", "tanh", "linear")])
@pytest.mark.parametrize("clip", [None, 0.3])
def test_lstm_peephole_clip_matches_recurrence(acts, clip):
    x, h, c = rand(S, B, I), rand(B, H), rand(B, H)
    w_ih, w_hh, bias, peep = rand(4 * H, I), rand(4 * H, H), rand(4 * H), rand(3 * H)
    (w_i, w_f, w_o, w_z), (r_i, r_f, r_o, r_z) = np.split(w_ih, 4), np.split(w_hh, 4)
    (b_i, b_f, b_o, b_z), (p_i, p_f, p_o) = np.split(bias, 4), np.split(peep, 3)
    ra, ca, a = (ACTS[n] for n in acts)
    h0, c0, states = h, c, []
    for xt in x:
        i = ra(xt @ w_i.T + h @ r_i.T + b_i + c * p_i)
        f = ra(xt @ w_f.T + h @ r_f.T + b_f + c * p_f)
        c = f * c + i * ca(xt @ w_z.T + h @ r_z.T + b_z)
        c = c if clip is None else np.clip(c, -clip, clip)
        h = ra(xt @ w_o.T + h @ r_o.T + b_o + c * p_o) * a(c)
        states.append(h)
    consts = {"weight_ih": w_ih, "weight_hh": w_hh, "bias": bias, "peephole": peep, "output_sequence": True,
              "recurrent_activation": acts[0], "cell_activation": acts[1], "activation": acts[2]}
    if clip is not None:
        consts["clip"] = f32(clip)
    got = _run("lstm", "iOS15", x, consts, initial_h=h0, initial_c=c0)
    _check(got, [np.stack(states), h, c], f32)


def test_symbolic_sequence_and_batch():
    """One lstm program with symbolic sequence and batch, run on two input sizes."""
    torch.manual_seed(4)
    m = torch.nn.LSTM(I, H)
    sd = _sd(m)
    s, b_ = Symbol("s"), Symbol("b")
    fn, b = new_function("f", {"x": tensor("fp32", (s, b_, I)), "h": tensor("fp32", (b_, H)),
                               "c": tensor("fp32", (b_, H))}, "iOS15")
    x, h, c = fn.inputs
    outs = b.op("lstm", x=x, initial_h=h, initial_c=c, weight_ih=_ifzo_to_ifoz(sd["weight_ih_l0"]),
                weight_hh=_ifzo_to_ifoz(sd["weight_hh_l0"]),
                bias=_ifzo_to_ifoz(sd["bias_ih_l0"] + sd["bias_hh_l0"]), output_sequence=True)
    assert [o.type.shape for o in outs] == [(s, b_, H), (b_, H), (b_, H)]
    fn.block.outputs = list(outs)
    for seq, batch in ((2, 1), (5, 3)):
        xv, hv, cv = rand(seq, batch, I), rand(batch, H), rand(batch, H)
        y, (hn, cn) = m(torch.from_numpy(xv), (torch.from_numpy(hv[None]), torch.from_numpy(cv[None])))
        _check(evaluate(fn, x=xv, h=hv, c=cv), [y.detach().numpy(), hn.detach().numpy()[0],
                                                cn.detach().numpy()[0]], f32)


# -- errors -----------------------------------------------------------------------------------------
def test_rejects_bad_inputs():
    fn, b = new_function("f", {"x": tensor("fp32", (S, B, I)), "x2": tensor("fp32", (B, I)),
                               "h": tensor("fp32", (B, H)), "xh": tensor("fp16", (S, B, I)),
                               "hh": tensor("fp16", (B, H)), "w": tensor("fp32", (3 * H, I))}, "iOS15")
    v = {i.name: i for i in fn.inputs}
    gw = {"weight_ih": rand(3 * H, I), "weight_hh": rand(3 * H, H)}
    lw = {"weight_ih": rand(4 * H, I), "weight_hh": rand(4 * H, H)}
    cases = [
        (r"gru.*'x'.*rank 3", lambda: b.op("gru", x=v["x2"], initial_h=v["h"], **gw)),
        (r"gru.*'x'.*fp16", lambda: b.op("gru", x=v["xh"], initial_h=v["hh"],
                                         weight_ih=gw["weight_ih"].astype(f16), weight_hh=gw["weight_hh"].astype(f16))),
        (r"gru.*'weight_ih'.*constant", lambda: b.op("gru", x=v["x"], initial_h=v["h"], weight_ih=v["w"],
                                                     weight_hh=gw["weight_hh"])),
        (r"gru.*'initial_h'.*missing", lambda: b.op("gru", x=v["x"], **gw)),
        (r"gru.*'weight_ih'.*rows", lambda: b.op("gru", x=v["x"], initial_h=v["h"], weight_ih=rand(2 * H, I),
                                                 weight_hh=gw["weight_hh"])),
        (r"gru.*'direction'", lambda: b.op("gru", x=v["x"], initial_h=v["h"], direction="bidirectional", **gw)),
        (r"lstm.*'weight_ih_back'", lambda: b.op("lstm", x=v["x"], initial_h=v["h"], initial_c=v["h"],
                                                 direction="bidirectional", **lw)),
        (r"lstm.*'cell_activation'", lambda: b.op("lstm", x=v["x"], initial_h=v["h"], initial_c=v["h"],
                                                  cell_activation="swish", **lw)),
        (r"rnn.*'activation'", lambda: b.op("rnn", x=v["x"], initial_h=v["h"], weight_ih=rand(H, I),
                                            weight_hh=rand(H, H), activation="gelu")),
        (r"gru.*unknown input.*'reset_after'", lambda: b.op("gru", x=v["x"], initial_h=v["h"], reset_after=True,
                                                            **gw)),
    ]
    for pattern, build in cases:
        with pytest.raises(MILTypeError, match=pattern):
            build()
