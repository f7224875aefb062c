"""geofence: the pure core of the Yangtze electronic-fence and early-warning engine.

No I/O, no sockets, no asyncio, no wall clock: time arrives as data. Adapters
(``zones``, ``streams``, ``replay``) import this package; it imports none of them.
"""

from geofence.alerts import INSTANT_TYPES, Alert, AlertType, Severity, Status, alert_id, sort_alerts
from geofence.deadletter import REASONS, DeadLetter
from geofence.errors import ConfigError, CoordinateError, DecodeError, GeofenceError, ZoneError
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import EventKind, PositionBatch, StaticReport, SubjectKind
from geofence.timefmt import iso_utc, parse_iso_utc

__all__ = [
    "INSTANT_TYPES",
    "REASONS",
    "Alert",
    "AlertType",
    "ConfigError",
    "CoordinateError",
    "DeadLetter",
    "DecodeError",
    "EventKind",
    "Fence",
    "FenceParams",
    "GeofenceError",
    "PositionBatch",
    "Severity",
    "StaticReport",
    "Status",
    "SubjectKind",
    "ZoneError",
    "ZoneKind",
    "ZoneSet",
    "alert_id",
    "iso_utc",
    "parse_iso_utc",
    "sort_alerts",
]
