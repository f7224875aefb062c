"""Pacing by event time: ``--speed N`` replays N× faster than the recording was made.

The runner hands the engine micro-batches as fast as it can read them. With a
:class:`Pacer`, each batch is held until it is due: a batch whose newest event
time is ``t`` is processed ``(t - t0) / N`` seconds of wall time after the
first batch (``t0``: the first event time), as a live feed would have delivered
it. The clock is the running maximum of event time, so a file that is not in
time order never makes the pacer wait backwards.

Pacing never cuts or merges batches: the engine sees exactly the micro-batches
of an unpaced replay (and of ``geofence run`` with the same ``--batch-size``),
so a paced replay writes the same bytes. The price is granularity: alerts come
out one micro-batch at a time, so for a smooth real-time view use a smaller
``--batch-size``.

A slow machine simply falls behind (no sleep); a long silence in the recording
is waited out at the chosen speed. :meth:`Pacer.cancel` ends every wait at once
(Ctrl-C).
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from geofence.errors import ConfigError
from geofence.positions import PositionBatch

__all__ = ["Pacer", "parse_speed"]

def parse_speed(text: str) -> float | None:
    """``"max"`` → None (as fast as possible); ``"N"`` → N (> 0) times real time."""
    value = text.strip().lower()
    if value in ("max", "inf"):
        return None
    try:
        speed = float(value.rstrip("x"))
    except ValueError:
        raise ConfigError(f"--speed {text!r} is not 'max' or a number; e.g. --speed max, --speed 60") from None
    if not math.isfinite(speed) or speed <= 0:
        raise ConfigError(f"--speed {text!r} must be 'max' or a positive number of times real time")
    return speed


class Pacer:
    """Holds position batches until their event time is due at ``speed`` × real time (one core thread)."""

    def __init__(self, speed: float) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ConfigError(f"speed={speed!r} must be a positive number of times real time")
        self.speed = float(speed)
        self._event0: float | None = None
        self._wall0 = 0.0
        self._event_max = -math.inf
        self._cancel = threading.Event()
        #: Total seconds slept waiting for event time (for the closing line).
        self.slept_s = 0.0

    def cancel(self) -> None:
        """Stop waiting: every later batch is released at once."""
        self._cancel.set()

    def wait_for(self, batch: PositionBatch) -> None:
        """Block until ``batch`` is due (its newest event time, at ``speed`` × real time)."""
        if len(batch) == 0:
            return
        newest = float(np.max(batch.ts_s))
        if self._event0 is None:
            self._event0 = float(np.min(batch.ts_s))
            self._wall0 = time.monotonic()
        self._event_max = max(self._event_max, newest)
        self._wait_until((self._event_max - self._event0) / self.speed)

    def _wait_until(self, due_s: float) -> None:
        delay = self._wall0 + due_s - time.monotonic()
        if delay > 0 and not self._cancel.is_set():
            t0 = time.monotonic()
            self._cancel.wait(delay)
            self.slept_s += time.monotonic() - t0

    def lag_s(self) -> float:
        """How far behind schedule the replay is, in wall seconds (0 when on time)."""
        if self._event0 is None:
            return 0.0
        due = self._wall0 + (self._event_max - self._event0) / self.speed
        return max(0.0, time.monotonic() - due)
