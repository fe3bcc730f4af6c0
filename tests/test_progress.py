"""The phase reporter: silent for short work, a redrawn line on a terminal, INFO records otherwise."""

from __future__ import annotations

import io
import logging
import time

import pytest
import torch

import torch_coreml
from torch_coreml import progress
from torch_coreml.progress import PhaseReporter, conversion, phase


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _run(stream, clock, durations):
    """A conversion whose phases take the given (fake) seconds."""
    with conversion("convert", stream=stream, clock=clock, interval=None):
        for name, seconds in durations:
            with phase(name):
                clock.now += seconds


def test_short_conversion_is_silent(caplog):
    clock, tty = FakeClock(), FakeTTY()
    caplog.set_level(logging.INFO, logger=progress.__name__)
    _run(tty, clock, [("capture", 0.5), ("lower", 1.0)])
    _run(io.StringIO(), clock, [("capture", 0.5), ("lower", 1.0)])
    assert tty.getvalue() == ""
    assert caplog.records == []


def test_tty_line_is_redrawn_per_phase_once_past_the_delay():
    clock, tty = FakeClock(), FakeTTY()
    _run(tty, clock, [("capture", 1.0), ("decompose", 3.0), ("lower", 1.5)])
    out = tty.getvalue()
    # Nothing about capture alone (it ended at 1 s); from the 2 s mark on, each boundary redraws.
    assert not out.startswith("\rconvert: capture 1.0s\x1b[K")
    assert "\rconvert: capture 1.0s | decompose 3.0s\x1b[K" in out
    assert "\rconvert: capture 1.0s | decompose 3.0s | lower 0.0s ...\x1b[K" in out
    assert out.endswith("\rconvert: capture 1.0s | decompose 3.0s | lower 1.5s — done in 5.5 s\x1b[K\n")
    assert out.count("\n") == 1  # one line, redrawn in place


def test_tty_tick_updates_the_running_phase():
    clock, tty = FakeClock(), FakeTTY()
    with conversion("convert", stream=tty, clock=clock, interval=None) as reporter:
        with phase("lower"):
            clock.now += 1.0
            reporter.tick()
            assert tty.getvalue() == ""  # still under the delay
            clock.now += 2.5
            reporter.tick()
            assert tty.getvalue().endswith("\rconvert: lower 3.5s ...\x1b[K")


def test_failure_ends_the_line_and_names_the_phase():
    clock, tty = FakeClock(), FakeTTY()
    with pytest.raises(RuntimeError):
        with conversion("convert", stream=tty, clock=clock, interval=None):
            with phase("lower"):
                clock.now += 3.0
                raise RuntimeError("boom")
    assert tty.getvalue().endswith("failed in lower after 3.0 s\x1b[K\n")


def test_not_a_tty_logs_each_phase_at_info(caplog):
    clock, stream = FakeClock(), io.StringIO()
    caplog.set_level(logging.INFO, logger=progress.__name__)
    _run(stream, clock, [("capture", 1.0), ("decompose", 3.0), ("lower", 1.5)])
    assert stream.getvalue() == ""  # no redraw characters in a log file
    messages = [r.getMessage() for r in caplog.records]
    assert all(r.levelno == logging.INFO for r in caplog.records)
    assert messages == [
        "convert: still running after 4.0 s (finished: capture 1.0 s, decompose 3.0 s)",
        "convert: lower ...",
        "convert: lower done in 1.5 s",
        "convert: done in 5.5 s",
    ]


def test_phase_outside_a_conversion_and_nested_conversions():
    with phase("alone"):  # a no-op, not an error
        pass
    clock, tty = FakeClock(), FakeTTY()
    with conversion("outer", stream=tty, clock=clock, interval=None) as outer:
        with conversion("inner") as inner:  # joins the outer reporter
            assert inner is outer
            with phase("lower"):
                clock.now += 3.0
    assert [name for name, _ in outer.finished] == ["lower"]
    assert "outer: lower 3.0s" in tty.getvalue()


def test_background_ticker_redraws_a_long_phase():
    tty = FakeTTY()
    clock = FakeClock()
    reporter = PhaseReporter("convert", stream=tty, clock=clock, delay=0.0, interval=0.01)
    reporter.start()
    try:
        with reporter.phase("lower"):
            deadline = time.monotonic() + 2.0
            while "lower" not in tty.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        reporter.finish()
    assert "convert: lower" in tty.getvalue()


def test_export_reports_its_phases(monkeypatch, caplog):
    # A zero delay makes a tiny model show every phase export goes through.
    caplog.set_level(logging.INFO, logger=progress.__name__)
    original = PhaseReporter.__init__

    def zero_delay(self, title, **kw):
        kw.update(delay=0.0, interval=None, stream=io.StringIO())
        original(self, title, **kw)

    monkeypatch.setattr(PhaseReporter, "__init__", zero_delay)
    torch_coreml.export(torch.nn.Linear(3, 2), (torch.randn(1, 3),), compute_precision="float32")
    started = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" ...")]
    assert started == [f"torch_coreml.export: {p} ..." for p in
                       ("capture", "decompose", "lower", "optimize", "write weights")]
