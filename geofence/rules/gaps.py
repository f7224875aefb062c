"""Feeds (receivers and sources) and their outage state, for ``feed_outage`` and gap hold-back.

A feed is a receiving station (tag-block ``s:``) or, for records without one, the
source they came from. Its usual rate is the median of its last 64 inter-arrival
times (event time); it is *silent* when nothing arrived for
``max(rate_factor x median, min_silence_s)``, judged only after ``min_reports``
arrivals. ``ais_gap`` alerts of subjects that only a silent feed heard are held
back (see :mod:`geofence.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RING", "Feed"]

#: Inter-arrival times kept per feed.
RING = 64


@dataclass(slots=True)
class Feed:
    """One feed's state."""

    name: str
    last_ts: float = float("nan")
    n: int = 0
    gaps: list[float] = field(default_factory=list)
    outage: bool = False
    timer_at: float = float("nan")
    held: list[int] = field(default_factory=list)

    def seen(self, ts: float) -> None:
        """Record an arrival at event time ``ts`` (processing order, so non-decreasing)."""
        if self.n:
            gaps = self.gaps
            gaps.append(max(0.0, ts - self.last_ts))
            if len(gaps) > RING:
                del gaps[0]
        self.last_ts = ts
        self.n += 1

    def silence_s(self, rate_factor: float, min_silence_s: float, min_reports: float) -> float | None:
        """Silence after which the feed counts as out (None: too few reports to judge)."""
        if self.n < min_reports or not self.gaps:
            return None
        return max(rate_factor * float(np.median(self.gaps)), min_silence_s)

    def to_json(self) -> list[Any]:
        """Snapshot form."""
        return [self.name, self.last_ts, self.n, self.gaps, self.outage, self.timer_at, self.held]

    @classmethod
    def from_json(cls, v: list[Any]) -> Feed:
        """Inverse of :meth:`to_json`."""
        return cls(v[0], v[1], v[2], list(v[3]), v[4], v[5], list(v[6]))
