"""From raw field columns (CSV cells or JSON values) to positions, static reports and dead letters.

CSV and JSONL decoders differ only in how they split lines into field values;
the meaning of a record is decided here, once, column-wise (docs/ingest.md,
"What a record becomes"):

* ``msg_type`` an AIS number other than a position or static type -> ``other``;
* ``msg_type`` static (AIS 5/24 or ``"static"``), or no position but static fields -> ``static``;
* otherwise a position: ``id``, ``ts``, ``lon``, ``lat`` must be present and valid, a
  container's id must pass ISO 6346, the AIS "not available" position (lon 181 /
  lat 91) is ``other`` as in NMEA, and out-of-range speeds/courses/headings become NaN.

The all-valid case costs a few numpy operations per column; Python loops run only
over the rows that fail a check. Fields that matter for few rows (a container's
``carrier``/``event``/``zone_id``, the static fields) are not read as columns at
all: :attr:`RecordColumns.lazy` fetches them for just those rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.deadletter import DeadLetter, raw_text
from geofence.decode._fields import STATIC_FIELDS, TypeClass, classify_type, floats, text_or_none
from geofence.decode._times import BAD, MISSING, TimeParser
from geofence.decode.accounting import Counts
from geofence.decode.iso6346 import canonical_container_id
from geofence.positions import EventKind, PositionBatch, StaticReport, SubjectKind

__all__ = ["LAZY_FIELDS", "RecordColumns", "RecordContext", "build_records"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

_REASON = ("", "missing_field", "bad_value", "bad_time", "out_of_range", "bad_container_id")
_MISSING, _BADVAL, _BADTIME, _RANGE, _CONTAINER = 1, 2, 3, 4, 5
_CACHE_MAX = 65536


@dataclass(slots=True)
class RecordContext:
    """Per-decoder settings and caches the builder needs."""

    source: str
    is_offset: bool
    times: TimeParser
    containers: dict[str, str | None] = field(default_factory=dict)


#: Fields read per row on demand rather than as columns.
LAZY_FIELDS: tuple[str, ...] = ("carrier", "event", "zone_id", *STATIC_FIELDS)


def _no_lazy(name: str, rows: list[int]) -> list[Any] | None:
    return None


@dataclass(slots=True)
class RecordColumns:
    """Raw values of ``len(line)`` records.

    ``values`` holds one list per eagerly read field (``id``, ``ts``, ``lon``, ``lat`` always;
    ``sog``, ``cog``, ``heading``, ``kind``, ``receiver``, ``msg_type`` when the format has them);
    ``lazy(field, rows)`` returns the values of one of :data:`LAZY_FIELDS` for the given row
    indices, or None when the input has no such field. ``text`` marks CSV cells (strings,
    stripped on use; empty means missing); ``maybe_bool`` says a JSON ``true``/``false`` may
    occur (numeric columns are then type-checked). ``numbers`` holds number fields a decoder has
    already read as float64 (NaN where missing); a field is in ``values`` or in ``numbers``, not both.
    """

    values: dict[str, list[Any]]
    line: I64
    raws: Sequence[bytes]
    text: bool
    maybe_bool: bool = True
    lazy: Callable[[str, list[int]], list[Any] | None] = _no_lazy
    numbers: dict[str, F64] = field(default_factory=dict)

    def floats(self, name: str) -> tuple[F64, Mask, Mask] | None:
        """Field ``name`` as ``(values, missing, bad)`` float64 columns; None when the input has no such field."""
        got = self.numbers.get(name)
        if got is not None:
            return got, np.isnan(got), np.zeros(got.size, dtype=bool)
        col = self.values.get(name)
        return None if col is None else floats(col, self.text, self.maybe_bool)


class _Fail:
    """First failure per row: reason code and detail (rows fail rarely, so details are built per row)."""

    def __init__(self, m: int) -> None:
        self.code = np.zeros(m, dtype=np.uint8)
        self.detail: dict[int, str] = {}

    def mark(self, mask: Mask, code: int, describe: Callable[[int], str]) -> None:
        new = mask & (self.code == 0)
        if not new.any():
            return
        self.code[new] = code
        for k in np.flatnonzero(new).tolist():
            self.detail[k] = describe(k)


def _obj(values: Sequence[Any]) -> Obj:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _ids(values: list[Any], text: bool) -> tuple[list[str], Mask, Mask]:
    """Subject ids as strings (an int MMSI too); ``(ids, missing, bad)``."""
    n = len(values)
    if text:
        ids = [v.strip() for v in values]
        missing = np.fromiter((not v for v in ids), dtype=bool, count=n) if "" in ids else np.zeros(n, dtype=bool)
        return ids, missing, np.zeros(n, dtype=bool)
    try:
        joined = "\x00".join(values)  # all strings? (in C: half the cost of collecting the types)
    except TypeError:
        joined = None
    if joined is not None:
        # an empty id leaves a NUL at an end or two in a row (so may an id holding NULs: then look exactly)
        maybe_empty = not joined or joined[0] == "\x00" or joined[-1] == "\x00" or "\x00\x00" in joined
        if not maybe_empty or "" not in values:
            return values, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    out: list[str] = []
    missing = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    for k, v in enumerate(values):
        if isinstance(v, str):
            out.append(v)
            missing[k] = not v
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(str(v))
        elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
            out.append(str(int(v)))
        else:
            out.append("")
            if v is None or (isinstance(v, float) and math.isnan(v)):
                missing[k] = True
            else:
                bad[k] = True
    return out, missing, bad


def _texts(values: list[Any] | None, n: int, text: bool) -> list[str]:
    """A free-text column (receiver, carrier, zone id) as strings, ``""`` when absent."""
    if values is None:
        return [""] * n
    if text:
        return [v.strip() for v in values]
    kinds = set(map(type, values))
    if kinds == {str}:
        return values
    if kinds <= {str, type(None)}:
        return [v or "" for v in values]
    return [text_or_none(v) or "" for v in values]


_FILLED: dict[tuple[str, int], Obj] = {}
_FILLED_MAX = 8


def _filled(value: str, n: int) -> Obj:
    """A read-only object array of ``n`` times ``value``, shared between batches of the same size.

    Filling an object array costs a reference count per element; the constant columns of a batch
    (no carrier, no zone, no receiver, the source name) are the same for every batch of a size,
    and nothing writes into a batch's columns (read-only: a write would raise, not corrupt).
    """
    key = (value, n)
    out = _FILLED.get(key)
    if out is None:
        if len(_FILLED) >= _FILLED_MAX:
            _FILLED.clear()
        out = np.full(n, value, dtype=object)
        out.flags.writeable = False
        _FILLED[key] = out
    return out


def _blank(n: int) -> Obj:
    """An object array of ``n`` empty strings (read-only, shared: :func:`_filled`)."""
    return _filled("", n)


def _codes(values: list[Any] | None, n: int, allowed: dict[Any, int], text: bool) -> tuple[npt.NDArray[np.uint8], Mask]:
    """Map an enumerated column (kind, event) to codes; ``(codes, bad)``; absent/empty -> 0."""
    codes = np.zeros(n, dtype=np.uint8)
    bad = np.zeros(n, dtype=bool)
    if values is None:
        return codes, bad
    if text:
        values = [v.strip().lower() for v in values]
    try:
        uniq = set(values)
    except TypeError:
        uniq = None
    if uniq is not None and uniq <= allowed.keys():
        used = {allowed[u] for u in uniq}
        if len(used) > 1:
            codes[:] = list(map(allowed.__getitem__, values))
        elif used != {0}:
            codes[:] = used.pop()
        return codes, bad
    for k, v in enumerate(values):
        try:
            codes[k] = allowed[v.strip().lower() if isinstance(v, str) else v]
        except (KeyError, TypeError):
            bad[k] = True
    return codes, bad


_KINDS: dict[Any, int] = {None: 0, "": 0, "vessel": int(SubjectKind.VESSEL), "container": int(SubjectKind.CONTAINER)}
_EVENTS: dict[Any, int] = {None: 0, "": 0, "release": int(EventKind.RELEASE)}


def _present(v: object) -> bool:
    if isinstance(v, str):
        return bool(v.strip())
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _with_static(rec: RecordColumns, rows: list[int]) -> set[int]:
    """Those of ``rows`` that carry any static field."""
    found: set[int] = set()
    for name in STATIC_FIELDS:
        got = rec.lazy(name, rows)
        if got is not None:
            found.update(k for k, v in zip(rows, got, strict=True) if _present(v))
    return found


def build_records(
    ctx: RecordContext, rec: RecordColumns, counts: Counts, dead: list[DeadLetter]
) -> tuple[PositionBatch, list[StaticReport]]:
    """Validate and convert the records of ``rec``; count every one and dead-letter the rejected ones."""
    m = int(rec.line.size)
    if m == 0:
        return PositionBatch.empty(), []
    vals = rec.values
    text = rec.text
    fail = _Fail(m)

    def shown(name: str, k: int) -> str:
        col = vals.get(name)
        if col is None:
            got = rec.numbers.get(name)
            return "absent" if got is None else repr(float(got[k]))[:80]
        return repr(col[k])[:80]

    # -- what kind of record each row is
    cls = np.zeros(m, dtype=np.uint8)
    types = vals.get("msg_type")
    if types is not None:
        try:
            cmap = {t: classify_type(t) for t in set(types)}
            used = set(cmap.values())
            if len(used) > 1:
                cls[:] = list(map(cmap.__getitem__, types))
            else:
                cls[:] = used.pop()
        except TypeError:
            cls[:] = list(map(classify_type, types))
    is_other = cls == TypeClass.OTHER
    is_static = cls == TypeClass.STATIC

    # -- coordinates first: a record without any, but with static fields, is a static report
    lon, lon_missing, lon_bad = rec.floats("lon") or _absent(m)
    lat, lat_missing, lat_bad = rec.floats("lat") or _absent(m)
    no_coords = lon_missing & lat_missing & ~is_other & ~is_static
    if no_coords.any():
        for k in _with_static(rec, np.flatnonzero(no_coords).tolist()):
            is_static[k] = True
        no_coords &= ~is_static
    is_pos = ~is_other & ~is_static

    # -- id, time
    ids, id_missing, id_bad = _ids(vals["id"], text)
    fail.mark(id_missing & ~is_other, _MISSING, lambda k: f"required field id is missing ({shown('id', k)})")
    fail.mark(id_bad & ~is_other, _BADVAL, lambda k: f"id {shown('id', k)} is not a string or integer")
    numeric_ts = rec.numbers.get("ts")  # epoch numbers the decoder read as float64
    ts_value: Callable[[int], Any]
    if numeric_ts is None:
        ts, ts_status = ctx.times.parse(vals["ts"])
        ts_value = vals["ts"].__getitem__
    else:
        ts, ts_status = ctx.times.parse_numbers(numeric_ts)
        ts_value = numeric_ts.item  # a Python float, shown as the value read
    fail.mark((ts_status == MISSING) & is_pos, _MISSING, lambda k: "required field ts is missing")
    fail.mark((ts_status == BAD) & ~is_other, _BADTIME, lambda k: ctx.times.describe(ts_value(k)))

    # -- coordinates
    fail.mark(no_coords, _MISSING, lambda k: "required fields lon and lat are missing")
    fail.mark((lon_missing | lat_missing) & is_pos, _MISSING,
              lambda k: f"required field {'lon' if lon_missing[k] else 'lat'} is missing")
    fail.mark((lon_bad | lat_bad) & is_pos, _BADVAL,
              lambda k: f"lon {shown('lon', k)} / lat {shown('lat', k)} is not a number")
    sentinel = is_pos & ((lon == 181.0) | (lat == 91.0))  # AIS "not available": a valid report, no position
    in_range = (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)  # False for NaN and inf
    fail.mark(is_pos & ~in_range & ~sentinel & ~lon_missing & ~lat_missing, _RANGE,
              lambda k: f"lon {lon[k]!r} / lat {lat[k]!r} is outside lon -180..180, lat -90..90 (or not finite)")

    # -- kind; containers: id, event, carrier, zone
    kind, kind_bad = _codes(vals.get("kind"), m, _KINDS, text)
    fail.mark(kind_bad & is_pos, _BADVAL, lambda k: f"kind {shown('kind', k)} is not 'vessel' or 'container'")
    event = np.zeros(m, dtype=np.uint8)
    carrier: list[str] | None = None
    zone: list[str] | None = None
    containers = np.flatnonzero((kind == SubjectKind.CONTAINER) & is_pos & (fail.code == 0))
    if containers.size:
        rows = containers.tolist()
        ev_values = rec.lazy("event", rows)
        ev, ev_bad = _codes(ev_values, len(rows), _EVENTS, text)
        event[containers] = ev
        ev_bad_rows = np.zeros(m, dtype=bool)
        ev_bad_rows[containers] = ev_bad
        fail.mark(ev_bad_rows, _BADVAL,
                  lambda k: f"event {rec.lazy('event', [k])[0]!r} is not 'release'")  # type: ignore[index]
        carrier, zone = [""] * m, [""] * m
        for name, out in (("carrier", carrier), ("zone_id", zone)):
            got = rec.lazy(name, rows)
            if got is not None:
                for k, text_value in zip(rows, _texts(got, len(rows), text), strict=True):
                    out[k] = text_value
        cache = ctx.containers
        bad_ids = np.zeros(m, dtype=bool)
        for k in containers.tolist():
            raw_id = ids[k]
            canon = cache.get(raw_id, "?")
            if canon == "?":
                canon = canonical_container_id(raw_id)
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[raw_id] = canon
            if canon is None:
                bad_ids[k] = True
            else:
                ids[k] = canon
        fail.mark(bad_ids, _CONTAINER, lambda k: f"container id {ids[k]!r} is not ISO 6346 (owner code, U/J/Z, "
                  "6 digits and a correct check digit, e.g. CSQU3054383)")

    # -- buckets
    ok = fail.code == 0
    not_available = sentinel & ok
    pos_rows = is_pos & ok & ~not_available
    static_rows = is_static & ok
    n_other = int(is_other.sum()) + int(not_available.sum())
    n_pos = int(pos_rows.sum())
    n_static = int(static_rows.sum())
    counts.input_lines += n_pos + n_static + n_other
    counts.positions += n_pos
    counts.static += n_static
    counts.other += n_other
    counts.no_position += int(not_available.sum())
    if not ok.all():
        for k in np.flatnonzero(~ok).tolist():
            reason = _REASON[int(fail.code[k])]
            counts.add_dead(reason)
            dead.append(DeadLetter(ctx.source, int(rec.line[k]), reason, fail.detail[k], raw_text(rec.raws[k]),
                                   ctx.is_offset))
    statics = _statics(rec, ids, ts, ts_status, np.flatnonzero(static_rows).tolist()) if n_static else []
    if n_pos == 0:
        return PositionBatch.empty(), statics
    return _batch(ctx, rec, ids, ts, lon, lat, kind, event, carrier, zone, pos_rows, n_pos, m), statics


def _absent(m: int) -> tuple[F64, Mask, Mask]:
    return np.full(m, np.nan), np.ones(m, dtype=bool), np.zeros(m, dtype=bool)


def _motion(rec: RecordColumns, name: str, m: int, upper: float) -> F64:
    got = rec.floats(name)
    if got is None:
        return np.full(m, np.nan)
    out = got[0]
    out[~((out >= 0.0) & (out < upper))] = np.nan  # AIS "not available" (102.3 kn, 360°, 511) and garbage
    return out


def _batch(
    ctx: RecordContext,
    rec: RecordColumns,
    ids: list[str],
    ts: F64,
    lon: F64,
    lat: F64,
    kind: npt.NDArray[np.uint8],
    event: npt.NDArray[np.uint8],
    carrier: list[str] | None,
    zone: list[str] | None,
    rows: Mask,
    n_pos: int,
    m: int,
) -> PositionBatch:
    vals = rec.values
    text = rec.text
    sog = _motion(rec, "sog", m, 102.3)
    cog = _motion(rec, "cog", m, 360.0)
    heading = _motion(rec, "heading", m, 360.0)
    carrier_col = _blank(m) if carrier is None else _obj(carrier)
    zone_col = _blank(m) if zone is None else _obj(zone)
    rx = vals.get("receiver")
    receiver = _blank(m) if rx is None else _obj(_texts(rx, m, text))
    source = _filled(ctx.source, m)[:n_pos]  # keyed by the batch size, which varies less than n_pos
    if n_pos == m:
        return PositionBatch(
            subject_id=_obj(ids), ts_s=ts, lon_deg=lon, lat_deg=lat, sog_kn=sog, cog_deg=cog, heading_deg=heading,
            kind=kind, carrier_id=carrier_col, event=event, event_zone=zone_col, receiver=receiver,
            source=source, line=rec.line,
        )
    sel = np.flatnonzero(rows)
    return PositionBatch(
        subject_id=_obj(ids)[sel], ts_s=ts[sel], lon_deg=lon[sel], lat_deg=lat[sel], sog_kn=sog[sel],
        cog_deg=cog[sel], heading_deg=heading[sel], kind=kind[sel], carrier_id=carrier_col[sel],
        event=event[sel], event_zone=zone_col[sel], receiver=receiver[sel], source=source,
        line=rec.line[sel],
    )


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _statics(
    rec: RecordColumns, ids: list[str], ts: F64, ts_status: npt.NDArray[np.uint8], rows: list[int]
) -> list[StaticReport]:
    cols = {name: rec.lazy(name, rows) or [None] * len(rows) for name in STATIC_FIELDS}
    out: list[StaticReport] = []
    for j, k in enumerate(rows):
        ship_type = _number(cols["ship_type"][j])
        length = _number(cols["length"][j])
        beam = _number(cols["beam"][j])
        imo_text = text_or_none(cols["imo"][j])
        imo_digits = "".join(ch for ch in imo_text if ch.isdigit()) if imo_text else ""
        out.append(
            StaticReport(
                subject_id=ids[k],
                ts_s=float(ts[k]) if ts_status[k] == 0 else None,
                name=text_or_none(cols["name"][j]),
                ship_type=int(ship_type) if ship_type is not None and ship_type.is_integer() else None,
                length_m=length if length is not None and length > 0 else None,
                beam_m=beam if beam is not None and beam > 0 else None,
                destination=text_or_none(cols["destination"][j]),
                eta=text_or_none(cols["eta"][j]),
                imo=int(imo_digits) if imo_digits and int(imo_digits) > 0 else None,
                callsign=text_or_none(cols["callsign"][j]),
            )
        )
    return out
