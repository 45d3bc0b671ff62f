"""The device check's clock: one wall-time budget for the whole run, a reserve kept for the last report.

Steps run in order of value; before each, its estimate is set against the time left (a step that
would not fit is skipped, with the reason), and a step that runs is given at most min(its cap, the
time left) before it is killed. The GPU lend is 15 minutes including the machine's start, so what
runs must end by itself: nothing here waits on a step past the budget.
"""
from __future__ import annotations

import time


class Budget:
    def __init__(self, seconds: float, reserve: float = 10.0, clock=time.monotonic):
        self.seconds, self.reserve, self._clock = seconds, reserve, clock
        self._start = clock()

    def elapsed(self) -> float:
        return self._clock() - self._start

    def left(self) -> float:
        """Seconds left for work (the reserve excluded); never negative."""
        return max(0.0, self.seconds - self.reserve - self.elapsed())

    def deadline(self) -> float:
        """time.time() by which work must end (for a subprocess that keeps its own clock)."""
        return time.time() + self.left()

    def limit(self, cap: float) -> float:
        """How long a step may run: its cap, or less if less is left."""
        return min(cap, self.left())

    def rules_out(self, estimate_s: float | None) -> str | None:
        """Why a step estimated at estimate_s cannot start now (None: it can)."""
        left = self.left()
        if left <= 0:
            return "time budget used up"
        if estimate_s is not None and estimate_s > left:
            return f"time budget: estimated {estimate_s:.0f} s > {left:.0f} s left"
        return None
