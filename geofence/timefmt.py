"""UTC time formatting: the one place epoch seconds become ISO 8601 strings.

Pure arithmetic on epoch seconds, no clock. Alerts use whole seconds with a
trailing ``Z`` when the time is integral, otherwise milliseconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from geofence.errors import DecodeError

__all__ = ["iso_utc", "parse_iso_utc"]


def iso_utc(ts_s: float) -> str:
    """Format UTC epoch seconds as ISO 8601 with ``Z``.

    >>> iso_utc(0)
    '1970-01-01T00:00:00Z'
    >>> iso_utc(1.5)
    '1970-01-01T00:00:01.500Z'
    """
    if not math.isfinite(ts_s):
        raise DecodeError("bad_time", f"time {ts_s!r} is not finite")
    whole = math.floor(ts_s)
    ms = round((ts_s - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    base = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}Z" if ms == 0 else f"{base}.{ms:03d}Z"


def parse_iso_utc(text: str) -> float:
    """Parse ISO 8601 with an explicit zone (``Z`` or ``+hh:mm``) into UTC epoch seconds.

    A string without a zone is rejected: guessing local time is how tracks end up
    hours off (movingpandas drops zones silently; we do not).
    """
    try:
        dt = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise DecodeError("bad_time", f"{text!r} is not ISO 8601 ({exc})") from None
    if dt.tzinfo is None:
        raise DecodeError("bad_time", f"{text!r} has no time zone; append 'Z' for UTC or an offset like '+08:00'")
    return dt.timestamp()
