"""Phase progress for long conversions.

    with conversion("export"):          # the top level of one piece of long work
        with phase("capture"):
            ...
        with phase("lower"):
            ...

Quick conversions stay silent: nothing is shown until the work has run for `delay` seconds (2 s).
After that, on a terminal one stderr line is redrawn in place with every finished phase and the
running one's elapsed time; elsewhere (CI logs, notebooks writing to files) each phase is logged at
INFO instead, because carriage-return redraws turn into garbage in a log file.

`phase` outside a `conversion` does nothing, so library functions can mark phases unconditionally;
a nested `conversion` joins the outer one, so only the top level of a long job reports.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
import time
from typing import Callable, Iterator, TextIO

log = logging.getLogger(__name__)

DELAY = 2.0  # seconds of silence before anything is shown
_active: contextvars.ContextVar[PhaseReporter | None] = contextvars.ContextVar("torch_coreml_progress",
                                                                               default=None)


class PhaseReporter:
    """Keeps the phase timings of one conversion and shows them (see the module docstring).

    `interval` is how often a terminal line is redrawn while a phase runs; None draws only at phase
    boundaries and on `tick()` (what the tests use, with a fake `clock`)."""

    def __init__(self, title: str, *, stream: TextIO | None = None, delay: float = DELAY,
                 interval: float | None = 0.25, clock: Callable[[], float] = time.monotonic):
        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _is_tty(self.stream)
        self.delay, self.interval, self.clock = delay, interval, clock
        self.finished: list[tuple[str, float]] = []
        self._running: list[tuple[str, float]] = []  # (name, start); nested phases stack up
        self.shown = False
        self.failed_in: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0

    @property
    def current(self) -> tuple[str, float] | None:
        return self._running[-1] if self._running else None

    # ---------------------------------------------------------------------------------- lifecycle ---

    def start(self) -> None:
        self._start = self.clock()
        if self.interval is not None:
            # Phases can run for minutes (decomposing a 1B-parameter model), so the elapsed time has
            # to move without waiting for the next phase boundary.
            self._thread = threading.Thread(target=self._tick_loop, name="torch_coreml-progress", daemon=True)
            self._thread.start()

    def finish(self, error: BaseException | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if not self.shown:
                return
            total = self.clock() - self._start
            if error is not None:
                where = f" in {self.failed_in}" if self.failed_in else ""
                outcome = f"failed{where} after {total:.1f} s"
            else:
                outcome = f"done in {total:.1f} s"
            if self.tty:
                # Ends the redrawn line, so whatever is printed next (or a traceback) starts clean.
                self._draw(f"{self._summary()} — {outcome}", end="\n")
            else:
                log.info("%s: %s", self.title, outcome)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        with self._lock:
            self._running.append((name, self.clock()))
            self._update(begin=True)
        try:
            yield
        except BaseException:
            self.failed_in = self.failed_in or name  # the innermost phase raised first
            raise
        finally:
            with self._lock:
                _, start = self._running.pop()
                self.finished.append((name, self.clock() - start))
                self._update(end=True)

    def tick(self) -> None:
        with self._lock:
            self._update()

    # ------------------------------------------------------------------------------------ display ---

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def _update(self, begin: bool = False, end: bool = False) -> None:
        if self.clock() - self._start < self.delay:
            return
        first = not self.shown
        self.shown = True
        if self.tty:
            self._draw(self._summary())
            return
        # Logs get one record per event, never a record per tick.
        if first:
            done = ", ".join(f"{n} {t:.1f} s" for n, t in self.finished) or "nothing yet"
            log.info("%s: still running after %.1f s (finished: %s)", self.title,
                     self.clock() - self._start, done)
        if end and not first:
            name, seconds = self.finished[-1]
            log.info("%s: %s done in %.1f s", self.title, name, seconds)
        if (begin or first) and self.current is not None:
            log.info("%s: %s ...", self.title, self.current[0])

    def _summary(self) -> str:
        parts = [f"{n} {t:.1f}s" for n, t in self.finished]
        if self.current is not None:
            name, start = self.current
            parts.append(f"{name} {self.clock() - start:.1f}s ...")
        return f"{self.title}: " + " | ".join(parts)

    def _draw(self, text: str, end: str = "") -> None:
        # "\r" + erase-to-end-of-line redraws in place without needing the old line's length.
        self.stream.write(f"\r{text}\x1b[K{end}")
        self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextlib.contextmanager
def conversion(title: str = "torch_coreml", **reporter_options) -> Iterator[PhaseReporter]:
    """Report the phases marked inside this block; joins an enclosing `conversion` if there is one."""
    outer = _active.get()
    if outer is not None:
        yield outer
        return
    reporter = PhaseReporter(title, **reporter_options)
    token = _active.set(reporter)
    reporter.start()
    error: BaseException | None = None
    try:
        yield reporter
    except BaseException as exc:
        error = exc
        raise
    finally:
        _active.reset(token)
        reporter.finish(error)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a phase of the enclosing `conversion`; a no-op when there is none."""
    reporter = _active.get()
    if reporter is None:
        yield
        return
    with reporter.phase(name):
        yield
