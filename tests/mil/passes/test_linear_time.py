"""The pass pipeline stays linear in the program size, and the use lists that make it so stay true.

No timings: the work is counted structurally. Every read of a block's op list is charged its length
(that is what a sweep over the block costs), so a pass that walks the function once per rewrite (a
`replace_uses` by scanning, a use count recomputed per match, an `insert_before` that searches the
list) shows up as work growing with the square of the program.
"""

from collections import Counter

import numpy as np
import pytest
import torch

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import DEFAULT_PIPELINE, run_default_passes
from torch_coreml.mil.program import Block, ContentKey, Operation, Program, Var
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate

WIDTH = 8
RNG = np.random.default_rng(0)


def _program(target="iOS17"):
    fn, b = new_function("main", {"x": tensor("fp32", (2, WIDTH))}, target)
    prog = Program()
    prog.add(fn)
    return prog, fn, b


def _unit(b, x):
    """One link of the chain, with something for most passes to rewrite."""
    x = b.op("identity", x=x)                                                        # noop
    t = b.op("transpose", x=b.op("transpose", x=x, perm=[1, 0]), perm=[1, 0])        # layout
    s = b.op("mul", x=t, y=b.op("sigmoid", x=t))                                     # silu
    shift = b.op("add", x=np.float32(np.arange(WIDTH)), y=np.float32(1))             # folds
    lin = b.op("linear", x=b.op("add", x=s, y=shift), weight=RNG.standard_normal((WIDTH, WIDTH)).astype(np.float32),
               bias=np.zeros(WIDTH, np.float32))
    y = b.op("add", x=lin, y=b.const(np.float32(np.linspace(-1, 1, WIDTH))))         # fuses into linear
    mu = b.op("reduce_mean", x=y, axes=[-1], keep_dims=True)                         # layer norm
    d = b.op("sub", x=y, y=mu)
    var = b.op("reduce_mean", x=b.op("mul", x=d, y=d), axes=[-1], keep_dims=True)
    n = b.op("mul", x=d, y=b.op("rsqrt", x=b.op("add", x=var, y=np.float32(1e-5))))
    half = b.const(np.float32(0.5))                                                  # equal consts: CSE
    return b.op("add", x=b.op("relu", x=n), y=b.op("mul", x=b.op("relu", x=n), y=half))  # equal ops: CSE


def _chain(units):
    prog, fn, b = _program()
    x = fn.inputs[0]
    for _ in range(units):
        x = _unit(b, x)
    fn.block.outputs = [b.op("relu", x=x, name="y")]
    return prog, fn


@pytest.fixture
def sweep_work(monkeypatch):
    """Counts the ops that reads of `Block.operations` hand out (a full sweep's worth per read)."""
    work = Counter()
    listing = Block.operations

    def counted(self):
        ops = listing.fget(self)
        work["ops"] += len(ops)
        return ops

    monkeypatch.setattr(Block, "operations", property(counted, listing.fset))
    return work


def _pipeline_work(units, work) -> int:
    prog, fn = _chain(units)
    work.clear()
    run_default_passes(prog)
    return work["ops"]


def test_pipeline_work_grows_linearly_with_the_program(sweep_work):
    small, large = _pipeline_work(40, sweep_work), _pipeline_work(160, sweep_work)
    # 4x the program: linear passes do ~4x the work; one sweep per rewrite would do ~16x.
    assert large <= 5 * small, (small, large)


def test_the_chain_is_rewritten_by_every_kind_of_pass_and_computes_the_same():
    prog, fn = _chain(3)
    x = torch.randn(2, WIDTH)
    before = evaluate(fn, {"x": x})[0]
    run_default_passes(prog)
    verify_program(prog)
    ops = Counter(op.op_type for op in fn.block.operations)
    assert ops["silu"] == 3 and ops["layer_norm"] == 3 and ops["linear"] == 3
    assert not {"identity", "transpose", "sigmoid", "reduce_mean"} & set(ops)
    assert ops["relu"] == 3 + 1  # one per unit after CSE, plus the output's
    torch.testing.assert_close(evaluate(fn, {"x": x})[0], before, rtol=1e-5, atol=1e-5)


def test_replace_uses_visits_the_uses_not_the_function(sweep_work):
    prog, fn, b = _program()
    x = fn.inputs[0]
    consts = [b.const(np.float32(i)) for i in range(500)]
    outs = [b.op("add", x=x, y=c) for c in consts]
    fn.block.outputs = [b.op("concat", values=outs, axis=0)]
    y = b.op("relu", x=x)
    sweep_work.clear()
    for c in consts[:100]:
        fn.block.replace_uses(c, y)
    assert sweep_work["ops"] == 0
    assert all(op.inputs["y"] is y for op in fn.block.operations[500:600])


# -- the use lists themselves ----------------------------------------------------------------------


def _expected_uses(root: Block) -> dict[int, Counter]:
    expected: dict[int, Counter] = {}
    for blk in root._blocks():
        for v in blk.outputs:
            expected.setdefault(id(v), Counter())[blk] += 1
    for op in root.walk():
        for v in op.input_vars():
            expected.setdefault(id(v), Counter())[op] += 1
    return expected


def _all_vars(fn):
    found = {id(v): v for v in fn.inputs}
    for blk in fn.block._blocks():
        found.update((id(v), v) for v in list(blk.inputs) + list(blk.outputs))
    for op in fn.block.walk():
        found.update((id(v), v) for v in list(op.outputs) + list(op.input_vars()))
    return found.values()


def assert_use_lists_true(fn):
    expected = _expected_uses(fn.block)
    for v in _all_vars(fn):
        actual = Counter({u: n for u, n in v._uses.items()
                          if fn.block.encloses(u if isinstance(u, Block) else u.block)})
        assert actual == expected.get(id(v), Counter()), v
        assert fn.block.use_count(v) == sum(actual.values())


def _with_cond(b, x):
    pred = b.op("greater", x=b.op("reduce_sum", x=x, axes=[0, 1]), y=np.float32(0))
    return b.cond(pred, lambda t: [t.op("mul", x=t.op("identity", x=x), y=2.0)],
                  lambda e: [x])


def test_use_lists_follow_every_kind_of_edit():
    prog, fn, b = _program()
    x = fn.inputs[0]
    a = b.op("relu", x=x)
    c = b.op("concat", values=[x, a], axis=0)
    branch = _with_cond(b, x)
    fn.block.outputs = [c, branch]
    assert_use_lists_true(fn)

    concat = c.op
    concat.inputs["values"].append(a)                 # in-place edits of a variadic binding
    concat.inputs["values"][0] = a
    concat.inputs["values"][1:2] = [x, x]
    assert_use_lists_true(fn)
    held, held_outputs = concat.inputs["values"], fn.block.outputs
    concat.inputs = {"values": [a, a], "axis": concat.inputs["axis"]}
    held.append(x)                                    # lists that left their owner no longer count
    fn.block.outputs = list(held_outputs)
    held_outputs.append(x)
    relu = a.op
    relu.inputs["x"] = branch                         # (not a valid program; the books must still balance)
    relu.inputs.update(x=x)
    assert_use_lists_true(fn)

    fn.block.outputs.append(a)                        # block outputs, in place and assigned
    fn.block.outputs = [c, branch, x]
    assert_use_lists_true(fn)

    fn.block.replace_uses(x, a)                       # reaches into the cond's blocks and outputs
    assert_use_lists_true(fn)
    assert not any(v is x for op in fn.block.walk() for v in op.input_vars())
    assert branch.op.blocks[1].outputs == [a] and fn.block.outputs[2] is a

    extra = Operation("relu", "extra", {"x": a}, [Var("extra_out", a.type)])
    assert a._uses.get(extra) is None                 # not in a block: reads nothing yet
    fn.block.insert_before(concat, extra)
    assert_use_lists_true(fn)
    fn.block.remove(extra)
    fn.block.remove(branch.op)                        # its nested ops' reads no longer count
    assert_use_lists_true(fn)


def test_every_pass_keeps_the_use_lists_true():
    prog, fn = _chain(2)
    for _ in range(2):
        for p in DEFAULT_PIPELINE:
            p(prog)
            assert_use_lists_true(fn)


def test_passes_on_nested_blocks_keep_the_use_lists_true():
    prog, fn, b = _program()
    x = fn.inputs[0]
    branch = _with_cond(b, b.op("mul", x=x, y=b.op("sigmoid", x=x)))
    fn.block.outputs = [b.op("add", x=branch, y=b.op("identity", x=x))]
    for p in DEFAULT_PIPELINE:
        p(prog)
        assert_use_lists_true(fn)
    verify_program(prog)
    assert "silu" in [op.op_type for op in fn.block.operations]
    then = next(op for op in fn.block.operations if op.op_type == "cond").blocks[0]
    assert "identity" not in [op.op_type for op in then.operations]


# -- batched op-list edits give what editing in place gives --------------------------------------


def test_deferred_inserts_and_removals_keep_program_order():
    rng = np.random.default_rng(1)
    block, model = Block(), []
    fresh = iter(range(10**6))

    def new_op():
        i = next(fresh)
        return Operation("identity", f"op{i}", {}, [Var(f"v{i}", None)])

    for _ in range(20):
        op = new_op()
        block.append(op)
        model.append(op)
    for step in range(400):
        kind = rng.integers(4)
        if kind == 0 and model:
            op = model[rng.integers(len(model))]
            block.remove(op)
            model.remove(op)
        elif kind == 1 and model:
            anchor, op = model[rng.integers(len(model))], new_op()
            block.insert_before(anchor, op)
            model.insert(model.index(anchor), op)
        elif kind == 2:
            op = new_op()
            block.append(op)
            model.append(op)
        elif step % 7 == 0:
            assert block.operations == model  # a read in the middle applies what was recorded so far
    assert block.operations == model
    with pytest.raises(ValueError):
        block.insert_before(Operation("identity", "stray", {}, []), new_op())


def test_a_removed_op_can_come_back_at_the_end():
    block = Block()
    ops = [Operation("identity", f"o{i}", {}, []) for i in range(3)]
    for op in ops:
        block.append(op)
    block.remove(ops[0])
    block.append(ops[0])
    assert block.operations == [ops[1], ops[2], ops[0]]


def test_content_keys_equal_exactly_when_the_bytes_are():
    base = RNG.standard_normal(100_000).astype(np.float32)
    same, tweaked = base.copy(), base.copy()
    tweaked[12_345] += 1  # off the sample: equal hashes, so the digests decide
    assert ContentKey(base) == ContentKey(same) and hash(ContentKey(base)) == hash(ContentKey(same))
    assert ContentKey(base) != ContentKey(tweaked)
    assert ContentKey(np.float32(1)) == ContentKey(np.array([1], np.float32))  # bytes, not shape
    assert ContentKey(base, np.float16) == ContentKey(base.astype(np.float16))
    one, other = ContentKey(base), ContentKey(base.view())  # one weight, two numpy views of it
    assert one == other and one._digest is None and other._digest is None
    assert ContentKey(base, np.float16)._address is None  # a converted copy's memory is not kept
