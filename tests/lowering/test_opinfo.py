"""PyTorch's OpInfo database through the whole pipeline, one test per OpInfo and dtype run; see
tests/lowering/opinfo_expectations.py for the expected failures and how to regenerate them."""

from __future__ import annotations

import logging

import pytest
import torch

from tests.lowering import _opinfo_collect as collect
from tests.lowering._opinfo import KINDS, all_expect_keys, expect_key, op_key, run_opinfo, selected_ops
from tests.lowering.opinfo_expectations import COMPARE, EXPECTED


@pytest.fixture(autouse=True)
def _quiet_logs():
    # The converter logs at INFO/DEBUG for every node; keep failure reports readable.
    logging.getLogger("torch_coreml").setLevel(logging.WARNING)


def _check(op, dtype):
    key = expect_key(op, dtype)
    outcome = run_opinfo(op, dtype, COMPARE.get(op_key(op)))
    if collect.collecting():
        collect.record(key, outcome)
        return
    expected = EXPECTED.get(key)
    if expected is None:
        if outcome.kind != "pass":
            pytest.fail(f"{outcome.kind}: {outcome.detail}\n(if this is expected, run "
                        "scripts/collect_opinfo_expectations.py and explain it)", pytrace=False)
        return
    kind, reason = expected
    if outcome.kind == "pass":
        pytest.fail(f"unexpected pass ({outcome.samples} samples): remove {key!r} from "
                    "tests/lowering/opinfo_expectations.py", pytrace=False)
    if outcome.kind != kind:
        pytest.fail(f"expected {kind!r} ({reason}), got {outcome.kind!r}: {outcome.detail}", pytrace=False)
    pytest.xfail(f"{kind}: {reason}")


@pytest.mark.parametrize("op", selected_ops(torch.float32), ids=op_key)
def test_opinfo_float32(op):
    _check(op, torch.float32)


@pytest.mark.parametrize("op", selected_ops(torch.int64), ids=op_key)
def test_opinfo_int64(op):
    _check(op, torch.int64)


_not_collecting = pytest.mark.skipif(collect.collecting(), reason="collect mode rewrites the expectations")


@_not_collecting
def test_expectations_are_valid():
    keys = all_expect_keys()
    names = {k.split("@")[0] for k in keys}
    unknown = sorted(set(EXPECTED) - keys) + sorted(set(COMPARE) - names)
    assert not unknown, f"expectations for ops op_db does not have (at that dtype): {unknown}"
    bad = {k: v for k, v in EXPECTED.items() if v[0] not in KINDS or not v[1].strip()}
    assert not bad, f"entries need a kind in {KINDS} and a reason: {bad}"
    bad_compare = {k: v for k, v in COMPARE.items() if v[0] not in ("shape_only", "indices_if_unique")}
    assert not bad_compare, f"unknown comparison modes: {bad_compare}"


@_not_collecting
def test_expectations_are_explained():
    todo = sorted(k for k, (_, reason) in EXPECTED.items() if reason.strip().upper().startswith("TODO"))
    assert not todo, f"{len(todo)} expected failures still need a reason in opinfo_expectations.py: {todo}"
