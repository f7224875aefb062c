"""A human-readable live alert stream for a terminal (``--alerts console``).

One aligned line per alert: time, status, severity, type, subject, zone and the
rule's figures. For machines use ``stdout`` (JSON lines) instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import TextIO

from geofence.alerts import Alert
from geofence.timefmt import iso_utc

__all__ = ["ConsoleSink", "format_alert"]


def _figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def format_alert(a: Alert) -> str:
    """One aligned line: time, STATUS, severity, type, subject, kind, ``@ zone``, (lon, lat), figures."""
    figures = "  ".join(f"{k}={_figure(v)}" for k, v in sorted(a.details.items()) if not isinstance(v, dict | list))
    zone = f"@ {a.zone_id}" if a.zone_id else ""
    return (
        f"{iso_utc(a.ts_s)}  {a.status.value.upper():<7} {a.severity.value:<8}  {a.type.value:<20} "
        f"{a.subject_id} {a.subject_kind:<9} {zone:<24} ({a.lon_deg:.4f}, {a.lat_deg:.4f})  {figures}"
    ).rstrip()


class ConsoleSink:
    """Readable alert lines on a text stream (default ``sys.stdout``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.name = "console"
        self._stream = stream

    def _out(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    async def start(self) -> None:
        """Nothing to open."""

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Print one line per alert."""
        if alerts:
            self._out().write("".join(format_alert(a) + "\n" for a in alerts))

    async def flush(self) -> None:
        """Flush the terminal."""
        with contextlib.suppress(BrokenPipeError):
            self._out().flush()

    async def close(self) -> None:
        """Flush; the stream stays open."""
        await self.flush()
