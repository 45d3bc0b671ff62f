"""A stopwatch for what a benchmark wraps: the seconds spent inside the wrapped functions, summed."""
from __future__ import annotations

import functools
import time


class Stopwatch:
    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        """fn, timed into self.seconds on every call."""
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        return timed
