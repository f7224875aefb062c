"""The record fields CSV and JSONL decoders know, the ``columns`` mapping, and value conversions.

One vocabulary for both formats (docs/ingest.md, "Columns"): a ``columns`` mapping
``{field: column}`` names, for any field, the CSV header cell or JSON key holding
it. JSON keys may be dotted paths into nested objects (``position.lon``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.decode.nmea import POSITION_TYPES, STATIC_TYPES
from geofence.errors import ConfigError

__all__ = [
    "CSV_ALIASES",
    "FIELDS",
    "JSONL_KEYS",
    "REQUIRED",
    "STATIC_FIELDS",
    "TypeClass",
    "check_columns",
    "classify_type",
    "floats",
    "text_or_none",
]

F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
_NUMERIC = frozenset({float, int, type(None)})

#: Fields every position record needs.
REQUIRED: tuple[str, ...] = ("id", "ts", "lon", "lat")
#: Optional position/event fields.
OPTIONAL: tuple[str, ...] = ("sog", "cog", "heading", "kind", "carrier", "event", "zone_id", "receiver", "msg_type")
#: Static-data fields (a record without a position but with any of these is a static report).
STATIC_FIELDS: tuple[str, ...] = (
    "name",
    "ship_type",
    "callsign",
    "imo",
    "destination",
    "eta",
    "length",
    "beam",
)
#: Every field a ``columns`` mapping may name.
FIELDS: tuple[str, ...] = REQUIRED + OPTIONAL + STATIC_FIELDS

#: JSON keys read when ``columns`` does not name the field (the documented JSONL schema).
JSONL_KEYS: dict[str, str] = {
    "id": "id",
    "ts": "ts",
    "lon": "lon",
    "lat": "lat",
    "sog": "sog",
    "cog": "cog",
    "heading": "heading",
    "kind": "kind",
    "carrier": "carrier",
    "event": "event",
    "zone_id": "zone_id",
    "receiver": "receiver",
    "msg_type": "type",
    "name": "name",
    "ship_type": "ship_type",
    "callsign": "callsign",
    "imo": "imo",
    "destination": "destination",
    "eta": "eta",
    "length": "length_m",
    "beam": "beam_m",
}

#: CSV header names (case-insensitive) recognised without a mapping; MarineCadastre's come first.
CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("mmsi", "id", "ssvid", "subject_id", "vessel_id"),
    "ts": ("basedatetime", "ts", "timestamp", "time", "datetime"),
    "lon": ("lon", "longitude", "lng"),
    "lat": ("lat", "latitude"),
    "sog": ("sog", "speed", "sog_kn"),
    "cog": ("cog", "course", "cog_deg"),
    "heading": ("heading", "heading_deg", "true_heading"),
    "kind": ("kind",),
    "carrier": ("carrier",),
    "event": ("event",),
    "zone_id": ("zone_id",),
    "receiver": ("receiver", "receiver_id", "station"),
    "msg_type": ("msgtype", "msg_type", "message_id", "type"),
    "name": ("vesselname", "shipname", "name", "vessel_name"),
    "ship_type": ("vesseltype", "shiptype", "ship_type"),
    "callsign": ("callsign", "call_sign"),
    "imo": ("imo",),
    "destination": ("destination",),
    "eta": ("eta",),
    "length": ("length", "length_m"),
    "beam": ("width", "beam", "beam_m"),
}


def check_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a ``columns`` mapping (field -> column/key) and return a plain copy.

    Raises
    ------
    ConfigError
        For an unknown field or an empty column name, naming the valid fields.
    """
    out: dict[str, str] = {}
    for key, col in (columns or {}).items():
        field = key.strip()
        if field not in FIELDS:
            raise ConfigError(
                f"--columns field {key!r} is unknown; fields are {', '.join(FIELDS)} "
                "(e.g. id=MMSI,ts=BaseDateTime,lon=LON,lat=LAT)"
            )
        if not isinstance(col, str) or not col.strip():
            raise ConfigError(f"--columns {field}= needs a column name, e.g. {field}=MyColumn")
        out[field] = col.strip()
    return out


class TypeClass:
    """What a record's ``msg_type`` makes of it (codes stored in a uint8 column)."""

    UNTYPED = 0  # no type, or one that is not an AIS number: treated by its content
    POSITION = 1  # AIS 1/2/3/18/19/27
    STATIC = 2  # AIS 5/24, or the literal "static"
    OTHER = 3  # any other AIS message number: counted as ``other``


def classify_type(value: object) -> int:
    """Map a message type (``18``, ``"18"``, ``"AIS.18"``, ``"static"``) to a :class:`TypeClass` code."""
    number: int | None = None
    if isinstance(value, bool) or value is None:
        return TypeClass.UNTYPED
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text == "static":
            return TypeClass.STATIC
        tail = text.rsplit(".", 1)[-1]
        if tail.isdigit() and (text == tail or text.startswith("ais")):
            number = int(tail)
    if number is None or not 1 <= number <= 27:
        return TypeClass.UNTYPED
    if number in POSITION_TYPES:
        return TypeClass.POSITION
    if number in STATIC_TYPES:
        return TypeClass.STATIC
    return TypeClass.OTHER


def floats(values: Sequence[Any], text: bool, check_bool: bool = True) -> tuple[F64, Mask, Mask]:
    """Convert a column to float64; return ``(values, missing, bad)``.

    ``None`` and empty strings are missing (NaN). From JSON (``text=False``) a
    NaN can only mean missing (non-finite literals are rewritten to ``null``);
    from CSV text ``"nan"`` is present but not finite, which range checks reject.
    Strings that are not numbers, booleans and nested values are bad.
    ``check_bool=False`` skips the boolean check when the caller knows there is none.
    """
    n = len(values)
    if not text:
        if check_bool and not set(map(type, values)) <= _NUMERIC:
            return _floats_slow(values)
        try:
            arr = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            return _floats_slow(values)
        if arr.shape != (n,):
            return _floats_slow(values)
        return arr, np.isnan(arr), np.zeros(n, dtype=bool)
    try:
        return np.array(values, dtype=np.float64), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    except (TypeError, ValueError):
        pass
    cells = np.char.strip(np.array(values, dtype=str))
    missing: Mask = cells == ""
    out = np.full(n, np.nan)
    try:
        out[~missing] = cells[~missing].astype(np.float64)
    except (TypeError, ValueError):
        return _floats_slow(values)
    return out, missing, np.zeros(n, dtype=bool)


def _floats_slow(values: Sequence[Any]) -> tuple[F64, Mask, Mask]:
    n = len(values)
    out = np.full(n, np.nan)
    missing = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    for k, v in enumerate(values):
        if v is None:
            missing[k] = True
        elif isinstance(v, bool):
            bad[k] = True
        elif isinstance(v, int | float):
            if isinstance(v, float) and math.isnan(v):
                missing[k] = True
            else:
                out[k] = float(v)
        elif isinstance(v, str | bytes):
            s = v.strip()
            if not s:
                missing[k] = True
                continue
            try:
                out[k] = float(s)
            except ValueError:
                bad[k] = True
        else:
            bad[k] = True
    return out, missing, bad


def text_or_none(value: object) -> str | None:
    """A text field as a stripped string (numbers as their integer text); None when empty or not text-like."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        s = value.strip()
        return s or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return None
