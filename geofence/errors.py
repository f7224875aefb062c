"""One exception family for the whole engine.

Every error raised by the core derives from :class:`GeofenceError`, so adapters
can catch one type, count the record and divert it to the dead letter. Errors
carry the offending value and say how to fix it (see ``../shared/STYLE.md``).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CoordinateError",
    "DecodeError",
    "GeofenceError",
    "ZoneError",
]


class GeofenceError(Exception):
    """Base class of every error raised by the geofence engine."""


class ConfigError(GeofenceError, ValueError):
    """A rule, CLI option or configuration value is invalid."""


class ZoneError(GeofenceError, ValueError):
    """A fence or zone file is invalid.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    zone_id
        The id of the offending feature, when known.
    """

    def __init__(self, message: str, zone_id: str | None = None) -> None:
        super().__init__(message if zone_id is None else f"{zone_id}: {message}")
        self.zone_id = zone_id


class CoordinateError(GeofenceError, ValueError):
    """Coordinates are NaN, infinite or outside lon [-180, 180] / lat [-90, 90]."""


class DecodeError(GeofenceError, ValueError):
    """An input record cannot be decoded.

    Parameters
    ----------
    reason
        A code from :data:`geofence.deadletter.REASONS`, e.g. ``"checksum"``.
    detail
        Human-readable explanation naming the bad value.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
