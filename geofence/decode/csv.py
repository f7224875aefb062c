"""CSV decoder: a header line, then one record per line, to positions, static reports and dead letters.

The header is found automatically: the first line that is not blank or a ``#``
comment, with a UTF-8 byte-order mark removed. Its cells are matched to fields by
the ``columns`` mapping, and fields the mapping does not name by well-known names
(case-insensitive; MarineCadastre's ``MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,
VesselName,...`` are among them, see :data:`~geofence.decode._fields.CSV_ALIASES`).
A first line that lacks ``id``, ``ts``, ``lon`` or ``lat`` is dead-lettered with a
detail naming the missing fields and the ``--columns`` fix, and the next line is
tried as the header. The header line, blank lines, ``#`` comments and repeated
header lines count as ``skipped``. The delimiter (``,`` ``;`` tab or ``|``) is taken
from the header line.

Rows are split with ``str.split`` (quoted rows with the ``csv`` module, one row at
a time, so a stray quote cannot swallow the next line); a row with a different
number of cells than the header is dead-lettered ``unparseable``. The header is
the decoder's only state; :meth:`CsvDecoder.snapshot` carries it across a restart.
Pure: no I/O and no clock.
"""

from __future__ import annotations

import csv as _csv
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from geofence.deadletter import DeadLetter, raw_text
from geofence.decode._fields import CSV_ALIASES, REQUIRED, check_columns
from geofence.decode._records import LAZY_FIELDS, RecordColumns, RecordContext, build_records
from geofence.decode._times import TimeParser
from geofence.decode.accounting import Counts, DecodeResult
from geofence.errors import ConfigError
from geofence.positions import PositionBatch

__all__ = ["CsvDecoder"]

_BOM = "\ufeff"
_DELIMITERS = (",", ";", "\t", "|")
_SNAPSHOT_VERSION = 1


class CsvDecoder:
    """Stateful decoder for one CSV input (the header carries over between calls).

    Parameters
    ----------
    source
        Name of the input, copied into positions and dead letters.
    columns
        ``{field: header cell}``, e.g. ``{"id": "ID", "ts": "ais_pos_timestamp", "lon": "longitude",
        "lat": "latitude"}``. Fields: id, ts, lon, lat, sog, cog, heading, kind, carrier, event,
        zone_id, receiver, msg_type, name, ship_type, callsign, imo, destination, eta, length, beam.
    time_format
        strptime format of the time column, e.g. ``"%d/%m/%Y %H:%M"``; default ISO 8601 or epoch seconds.
    tz
        IANA zone of naive times (default UTC).
    delimiter
        Cell separator; default: detected from the header line.
    line_is_offset
        Dead letters name ``offset`` instead of ``line`` (streams).
    max_line_bytes
        Longer lines go to the dead letter as ``too_long``.
    """

    def __init__(
        self,
        source: str,
        *,
        columns: Mapping[str, str] | None = None,
        time_format: str | None = None,
        tz: str = "UTC",
        delimiter: str | None = None,
        line_is_offset: bool = False,
        max_line_bytes: int = 65536,
    ) -> None:
        if delimiter is not None and len(delimiter) != 1:
            raise ConfigError(f"delimiter {delimiter!r} must be one character, e.g. ',' or ';'")
        self.source = source
        self._columns = check_columns(columns)
        self._fixed_delimiter = delimiter
        self._is_offset = line_is_offset
        self._max_line = int(max_line_bytes)
        self._ctx = RecordContext(source, line_is_offset, TimeParser(time_format, tz))
        self._header: list[str] | None = None
        self._delim = delimiter or ","
        self._index: dict[str, int] = {}

    # ------------------------------------------------------------------ public

    @property
    def header(self) -> list[str] | None:
        """The header cells once found, else None."""
        return None if self._header is None else list(self._header)

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode ``lines``; ``first_line`` is the 1-based line number (or offset) of ``lines[0]``."""
        counts = Counts()
        dead: list[DeadLetter] = []
        n = len(lines)
        if n == 0:
            return DecodeResult.empty()
        texts = _decode(lines)
        start = 0
        while self._header is None and start < n:
            self._try_header(texts[start], lines[start], first_line + start, counts, dead)
            start += 1
        if start >= n:
            return DecodeResult(positions=PositionBatch.empty(), dead=dead, counts=counts)
        rows, keep = self._split(texts, lines, start, counts, dead, first_line)
        if not rows:
            return DecodeResult(positions=PositionBatch.empty(), dead=dead, counts=counts)
        cols = {name: [r[j] for r in rows] for name, j in self._index.items() if name not in LAZY_FIELDS}
        line = first_line + np.asarray(keep, dtype=np.int64)
        index = self._index

        def lazy(name: str, at: list[int]) -> list[Any] | None:
            j = index.get(name)
            return None if j is None else [rows[k][j] for k in at]

        rec = RecordColumns(cols, line, [lines[i] for i in keep], text=True, maybe_bool=False, lazy=lazy)
        more: list[DeadLetter] = []
        batch, statics = build_records(self._ctx, rec, counts, more)
        if more:
            dead = sorted(dead + more, key=lambda d: d.line)
        return DecodeResult(positions=batch, statics=statics, dead=dead, counts=counts)

    def close(self) -> DecodeResult:
        """End of input: CSV keeps no partial records, so nothing is left."""
        return DecodeResult.empty()

    def snapshot(self) -> bytes:
        """The header and delimiter, so that a restarted run can continue mid-file."""
        return orjson.dumps({"version": _SNAPSHOT_VERSION, "header": self._header, "delimiter": self._delim})

    def restore(self, data: bytes) -> None:
        """Restore :meth:`snapshot` output."""
        state = orjson.loads(data)
        if not isinstance(state, dict) or state.get("version") != _SNAPSHOT_VERSION:
            raise ConfigError(f"CSV decoder snapshot {data[:60]!r} is not version {_SNAPSHOT_VERSION}")
        header = state.get("header")
        self._delim = str(state.get("delimiter") or ",")
        if header is None:
            self._header, self._index = None, {}
            return
        index = self._resolve([str(c) for c in header])
        if isinstance(index, str):
            raise ConfigError(f"CSV decoder snapshot header does not fit the columns: {index}")
        self._header, self._index = [str(c) for c in header], index

    # ------------------------------------------------------------------ header

    def _try_header(self, text: str, raw: bytes, line: int, counts: Counts, dead: list[DeadLetter]) -> None:
        stripped = text.strip().lstrip(_BOM).strip()
        if not stripped or stripped.startswith("#"):
            counts.input_lines += 1
            counts.skipped += 1
            return
        if len(raw) > self._max_line:
            self._dead(counts, dead, line, "too_long", f"{len(raw)} bytes > {self._max_line}", raw)
            return
        delim = self._fixed_delimiter or max(_DELIMITERS, key=stripped.count)
        try:
            cells = [c.strip() for c in next(_csv.reader([stripped], delimiter=delim, strict=True))]
        except (_csv.Error, StopIteration) as exc:
            self._dead(counts, dead, line, "unparseable", f"header line is not CSV ({exc})", raw)
            return
        index = self._resolve(cells)
        if isinstance(index, str):
            self._dead(counts, dead, line, "missing_field", index, raw)
            return
        self._header, self._index, self._delim = cells, index, delim
        counts.input_lines += 1
        counts.skipped += 1

    def _resolve(self, cells: list[str]) -> dict[str, int] | str:
        """Field -> cell index, or a message naming what is missing and how to map it."""
        exact = {c: i for i, c in reversed(list(enumerate(cells)))}
        lower = {c.lower(): i for i, c in reversed(list(enumerate(cells)))}
        index: dict[str, int] = {}
        unknown: list[str] = []
        for name, col in self._columns.items():
            j = exact.get(col, lower.get(col.lower()))
            if j is None:
                unknown.append(f"{name}={col}")
            else:
                index[name] = j
        if unknown:
            return f"--columns {', '.join(unknown)}: no such header cell (header: {', '.join(cells)[:300]})"
        for name, aliases in CSV_ALIASES.items():
            if name in index:
                continue
            for alias in aliases:
                j = lower.get(alias)
                if j is not None and j not in index.values():
                    index[name] = j
                    break
        missing = [f for f in REQUIRED if f not in index]
        if missing:
            return (
                f"header has no column for {', '.join(missing)} (header: {', '.join(cells)[:300]}); "
                "map them with --columns, e.g. id=MMSI,ts=BaseDateTime,lon=LON,lat=LAT"
            )
        return index

    # ------------------------------------------------------------------ rows

    def _split(
        self,
        texts: list[str],
        lines: Sequence[bytes],
        start: int,
        counts: Counts,
        dead: list[DeadLetter],
        first_line: int,
    ) -> tuple[list[list[str]], list[int]]:
        """Cells of the data rows among ``texts[start:]`` and their indices; the rest counted or dead-lettered."""
        header = self._header
        if header is None:  # pragma: no cover - feed() only calls this with a header
            return [], []
        width = len(header)
        delim = self._delim
        part = texts[start:] if start else texts
        rows = [t.split(delim) for t in part]
        blob = "\n" + "\n".join(part)
        if (
            '"' not in blob
            and "\n#" not in blob
            and max(map(len, lines)) <= self._max_line
            and set(map(len, rows)) == {width}
        ):
            firsts = [r[0] for r in rows]
            if header[0] not in firsts and _BOM + header[0] not in firsts:
                return rows, list(range(start, len(texts)))
        good: list[list[str]] = []
        keep: list[int] = []
        for k, cells in enumerate(rows):
            i = start + k
            text = part[k]
            raw = lines[i]
            if len(raw) > self._max_line:
                self._dead(counts, dead, first_line + i, "too_long", f"{len(raw)} bytes > {self._max_line}", raw)
                continue
            if '"' in text:
                try:
                    cells = next(_csv.reader([text], delimiter=delim, strict=True))
                except (_csv.Error, StopIteration) as exc:
                    self._dead(counts, dead, first_line + i, "unparseable", f"bad CSV quoting ({exc})", raw)
                    continue
            stripped = text.strip()
            if stripped.startswith("#"):
                counts.input_lines += 1
                counts.skipped += 1
                continue
            if len(cells) == width:
                if cells == header or (cells[0].startswith(_BOM) and [cells[0][1:], *cells[1:]] == header):
                    counts.input_lines += 1  # a repeated header (concatenated exports)
                    counts.skipped += 1
                    continue
                good.append(cells)
                keep.append(i)
                continue
            if not stripped:
                counts.input_lines += 1
                counts.skipped += 1
                continue
            detail = f"{len(cells)} cells, the header has {width}"
            self._dead(counts, dead, first_line + i, "unparseable", detail, raw)
        return good, keep

    def _dead(self, counts: Counts, dead: list[DeadLetter], line: int, reason: str, detail: str, raw: bytes) -> None:
        counts.add_dead(reason)
        dead.append(DeadLetter(self.source, line, reason, detail, raw_text(raw), self._is_offset))


def _decode(lines: Sequence[bytes]) -> list[str]:
    """Lines as text (invalid UTF-8 replaced by U+FFFD; the dead letters keep the raw bytes)."""
    texts = b"\n".join(lines).decode("utf-8", errors="replace").split("\n")
    if len(texts) != len(lines):  # a line held a newline of its own
        texts = [line.decode("utf-8", errors="replace") for line in lines]
    return [t.rstrip("\r") for t in texts] if any("\r" in t for t in texts) else texts
