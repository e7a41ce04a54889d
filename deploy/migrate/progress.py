"""Progress of one table: a bar redrawn in place on a terminal, a plain line every few seconds otherwise (CI
logs, `kubectl logs`), and the same figures in both: rows, rows/s and the time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO

LOG_EVERY_SECONDS = 5.0
BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class TableProgress:
    def __init__(self, label: str, total: int, out: TextIO | None = None, interactive: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.out = out or sys.stderr
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.done = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self._last_draw = 0.0

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.interactive and now - self._last_draw >= 0.1:
            self._last_draw = now
            self.out.write("\r" + self.line(now))
            self.out.flush()
        elif not self.interactive and now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            self.out.write(self.line(now) + "\n")
            self.out.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        share = min(1.0, self.done / self.total) if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        bar = "#" * int(share * BAR_WIDTH)
        return (
            f"{self.label:<28} [{bar:<{BAR_WIDTH}}] {self.done:>9,}/{self.total:<9,} {rate:>9,.0f} rows/s "
            f"ETA {_duration(eta)}"
        )

    def finish(self, state: str) -> None:
        text = f"{self.line()}  {state}"
        self.out.write(("\r" + text + "\n") if self.interactive else text + "\n")
        self.out.flush()
