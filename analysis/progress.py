"""One progress display for every long job: ``iapo sweep``, ``compare``, ``figures``,
``complexity``."""

from __future__ import annotations

import math
import sys
import time


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class Progress:
    """A progress bar on stderr: cells done / total, rate (cells/s) and ETA.

    On a terminal the line is redrawn in place (at most 10 times a second); otherwise (a log
    file, a test) a line is printed at most every ``log_every`` seconds, and at the end.
    ``initial`` cells (found already stored) count as done but not in the rate.
    """

    def __init__(self, total: int = 0, *, initial: int = 0, label: str = "cells",
                 prefix: str = "", stream=None, log_every: float = 10.0):
        self.total, self.done, self.label, self.prefix = total, initial, label, prefix
        self._initial = initial
        self.stream = sys.stderr if stream is None else stream
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = 0.1 if self._tty else log_every
        self._t0 = time.perf_counter()
        self._last = -math.inf
        if total > 0:
            self._draw(force=True)

    def line(self) -> str:
        elapsed = time.perf_counter() - self._t0
        new = self.done - self._initial
        rate = new / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        if self.done >= self.total:
            eta = 0.0
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.prefix}[{bar}] {self.done}/{self.total} {self.label} {pct:3.0f}% | "
                f"{rate:.1f} {self.label}/s | ETA {_clock(eta)} | elapsed {_clock(elapsed)}")

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self._every:
            return
        self._last = now
        if self._tty:
            self.stream.write("\r" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        self.done += n
        self._draw(force=self.done >= self.total)

    def __call__(self, done: int, total: int) -> None:
        """The ``progress(done, total)`` callback of :func:`analysis.evaluate.run_replicates`."""
        self.total, self.done = total, done
        self._draw(force=done >= total)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
