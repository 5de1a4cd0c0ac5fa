"""Time series for the dashboard: per-second sums and an ETA, as plain arithmetic over a ``now`` passed in.

Apart from the state they feed so that throughput windows and the ETA are tested on their own, with made-up
clocks, and so that their cost stays visible: both keep a bounded number of samples however fast events come.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["Eta", "PerSecond"]


class PerSecond:
    """Sums of a quantity per whole second (items done, seconds of latency), kept for ``keep_s`` seconds.

    One bucket per second, whatever the event rate, so memory and the cost of a query stay small.
    """

    __slots__ = ("_buckets", "_keep", "start")

    def __init__(self, start: float, *, keep_s: int = 180) -> None:
        self.start = start
        self._keep = keep_s
        self._buckets: deque[list[float]] = deque()  # [second, sum], seconds ascending

    def add(self, now: float, value: float = 1.0) -> None:
        second = math.floor(now)
        buckets = self._buckets
        # A clock that steps back (it should not) folds into the newest bucket rather than reordering them.
        if buckets and buckets[-1][0] >= second:
            buckets[-1][1] += value
            return
        buckets.append([second, value])
        while buckets[0][0] <= second - self._keep:
            buckets.popleft()

    def window_sum(self, now: float, window_s: int) -> float:
        """The sum over the last ``window_s`` whole seconds, the current partial second included."""
        first = math.floor(now) - window_s + 1
        total = 0.0
        for second, value in reversed(self._buckets):
            if second < first:
                break
            total += value
        return total

    def rate(self, now: float, window_s: int) -> float:
        """Per second over the last ``window_s`` seconds (or since ``start``, if that is more recent)."""
        span = min(window_s - 1 + (now - math.floor(now)), now - self.start)
        # Below a second the rate of one event would read as hundreds per second.
        return self.window_sum(now, window_s) / max(span, 1.0)

    def history(self, now: float, *, since: float, seconds: int) -> tuple[float, ...]:
        """One value per whole second from ``since`` (at most ``seconds`` back, and no further than kept) to now,
        zeros where idle."""
        last = math.floor(now)
        first = max(math.floor(since), last - min(seconds, self._keep) + 1)
        if first > last:
            return ()
        values = [0.0] * (last - first + 1)
        for second, value in reversed(self._buckets):
            if second < first:
                break
            if second <= last:
                values[int(second) - first] += value
        return tuple(values)


class Eta:
    """Seconds left for work counted in units, from the speed over a recent window of samples.

    Samples closer together than ``resolution_s`` replace each other, so folding thousands of events a second
    keeps a few dozen samples. The speed is measured in units per second rather than as a fraction of the total,
    because the total is itself an estimate that is corrected as the run goes.
    """

    __slots__ = ("_samples", "max_extrapolate_s", "resolution_s", "window_s")

    def __init__(self, *, window_s: float = 30.0, resolution_s: float = 0.5, max_extrapolate_s: float = 10.0) -> None:
        self.window_s = window_s
        self.resolution_s = resolution_s
        self.max_extrapolate_s = max_extrapolate_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, done: float) -> None:
        samples = self._samples
        if samples and done < samples[-1][1]:
            # The count went backwards (a correction): speeds measured before it mean nothing now.
            samples.clear()
        if len(samples) >= 2 and now - samples[-2][0] < self.resolution_s:
            samples[-1] = (now, done)
        else:
            samples.append((now, done))
        cutoff = now - self.window_s
        while len(samples) > 2 and samples[1][0] <= cutoff:
            samples.popleft()

    @property
    def speed(self) -> float | None:
        """Units per second over the window, or None before two samples."""
        samples = self._samples
        if len(samples) < 2:
            return None
        (t0, d0), (t1, d1) = samples[0], samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta(self, now: float, total: float) -> float | None:
        """Seconds until ``total`` units are done; 0 when done, None when there is no speed to go by."""
        if not self._samples:
            return None
        last_time, done = self._samples[-1]
        remaining = total - done
        if remaining <= 0:
            return 0.0
        speed = self.speed
        if not speed or speed <= 0:
            return None
        # Between samples the estimate counts down with the clock (for a while), instead of freezing.
        counted_down = min(max(now - last_time, 0.0), self.max_extrapolate_s)
        # Work remains, so the estimate never claims to be done.
        return max(remaining / speed - counted_down, 1.0)
