"""JSON Lines decoder: one JSON object per line to positions, static reports and dead letters.

Schema (docs/ingest.md, "JSONL"): required ``id`` (read as a string, an integer MMSI
too), ``ts`` (ISO 8601, or epoch seconds), ``lon``, ``lat``; optional ``kind``
(``vessel``/``container``), ``sog`` kn, ``cog``/``heading`` deg, ``carrier``,
``event`` (``release``) with ``zone_id``, ``receiver``, ``type`` (an AIS message
number or ``static``) and static fields ``name``, ``ship_type``, ``callsign``,
``imo``, ``destination``, ``eta``, ``length_m``, ``beam_m``. Other key names are
mapped with ``columns`` (dotted paths reach into nested objects).

Speed: a batch of flat lines of scalars (the common feed) is read by a compiled scan
(:mod:`geofence.decode._jsonscan`) straight into columns; it declines any batch it
would not read exactly as the typed msgspec path below, and no batch that is not valid
UTF-8 takes either typed path. Any other batch is parsed by one call over
``[line,line,...]``. First msgspec decodes it into typed records (a struct per line, numeric fields as
floats, every other field a JSON scalar: string, int64 integer, float or null),
which skips the per-line dict and the per-value type checks; a batch with any line
that does not fit (not JSON, not an object, a number field holding a string or a
boolean, a boolean, array, object or integer beyond int64 elsewhere, a non-finite literal) is
parsed again by ``orjson.loads`` into dicts, whose values are checked field by
field. Both readings give the same records for a batch that fits, so the output
does not depend on which one ran. Each field becomes a column with one ``map``
over the parsed records; per-line parsing happens only inside a batch that fails
both (the batch is bisected down to the bad lines, which are dead-lettered). The batch parse is
accepted only when it yields exactly one object per line; a contrived input in
which one line's unbalanced brackets are closed by a later line and another
line holds two objects could still pass that check, and its records would then
be attributed to the wrong line numbers (never lost: the counts still balance). Non-finite literals
(``NaN``, ``Infinity``), which orjson rejects, are rewritten to ``null`` first and
so read as missing. Pure: no I/O and no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from geofence._gcpause import gc_paused
from geofence.deadletter import DeadLetter, raw_text
from geofence.decode._fields import JSONL_KEYS, check_columns
from geofence.decode._jsonscan import FlatScan
from geofence.decode._records import LAZY_FIELDS, RecordColumns, RecordContext, build_records
from geofence.decode._times import TimeParser
from geofence.decode.accounting import Counts, DecodeResult
from geofence.positions import PositionBatch

__all__ = ["JsonlDecoder"]

# A non-finite literal in value position (after ':' '[' or ','), as Python's json module writes them.
_NONFINITE = re.compile(rb"(?<=[:\[,])(\s*)-?(?:NaN|Infinity)(?=\s*[,\]}])")
_NONFINITE_HINT = (b"NaN", b"Infinity")
_BISECT_MIN = 8
_NAN = float("nan")
#: Fields read as numbers (msgspec ``float``: a JSON integer or float; absent -> NaN, null -> None).
_FLOAT_FIELDS = frozenset({"lon", "lat", "sog", "cog", "heading"})
_GET_TS = attrgetter("ts")


_INT_LO, _INT_HI = -(1 << 63), (1 << 64) - 1  # orjson keeps integers in this range; it reads larger ones as floats


def _as_orjson(value: Any) -> Any:
    """``value`` as orjson would have read it: integers beyond 64 bits become floats (msgspec keeps them exact)."""
    t = type(value)
    if t is int:
        return value if _INT_LO <= value <= _INT_HI else float(value)
    if t is list:
        return [_as_orjson(v) for v in value]
    if t is dict:
        return {k: _as_orjson(v) for k, v in value.items()}
    return value


def _orjson_column(values: list[Any]) -> list[Any]:
    """:func:`_as_orjson` of a column, touching it only when it holds integers or nested values."""
    kinds = set(map(type, values))
    if not kinds & {int, list, dict}:
        return values
    return [_as_orjson(v) for v in values]


#: A JSON scalar as the typed reading accepts it: an integer only within int64 (orjson reads wider ones as floats,
#: or as unsigned; such a batch takes the dict path), no boolean, array or object (which also take the dict path).
_SCALAR = str | Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)] | float | None


def _record_decoder(
    keys: Mapping[str, tuple[str, ...]], *, scalars: bool = False, number_ts: bool = False
) -> msgspec.json.Decoder[Any] | None:
    """A msgspec decoder of ``[record, ...]`` with the fields ``keys`` names; None when a key is a dotted path.

    Number fields are typed ``float | None`` (so strings and booleans fail the batch, which then takes the
    dict path that checks each value). With ``scalars`` every other field is a :data:`_SCALAR`, which
    orjson reads the same way, so the columns need no check; without, ``object`` (decoded as found, then
    integers beyond 64 bits made floats as orjson reads them: :func:`_orjson_column`), for the lazy
    fields, whose decoding must not fail once the batch has been read. Unknown keys are ignored, as the
    dict path ignores them. The decoder reads only the fields it is given: a record type with fewer fields
    is faster to fill, which is why the lazy fields have a decoder of their own. With ``number_ts`` the
    ``ts`` field is typed as a number (a JSON integer or float, read as float): a feed of epoch times,
    whose column then goes straight into a float64 array.
    """
    if any(len(path) != 1 for path in keys.values()):
        return None
    other: Any = _SCALAR if scalars else object
    fields: list[tuple[str, Any, Any]] = [
        (name, float | None, _NAN)
        if name in _FLOAT_FIELDS
        else (name, float, _NAN)
        if number_ts and name == "ts"
        else (name, other, None)
        for name in keys
    ]
    try:
        record = msgspec.defstruct(
            "JsonlRecord", fields, rename={name: path[0] for name, path in keys.items()}, gc=False
        )
    except (TypeError, ValueError):  # e.g. two fields mapped to one key: the dict path reads those
        return None
    return msgspec.json.Decoder(list[record])  # type: ignore[valid-type]


#: Eager fields whose column is dropped when every record lacks them (or holds null): the builder reads an
#: absent column exactly as one of nulls (no message type, the default kind, no receiver).
_DROP_IF_NULL = ("kind", "receiver", "msg_type")


_LITERALS = (b"-Infinity", b"Infinity", b"NaN")
_BEFORE = (b": ", b":", b", ", b",", b"[ ", b"[")


def _fix_nonfinite(data: bytes) -> bytes:
    """Rewrite ``NaN``/``Infinity``/``-Infinity`` in value position to ``null`` (plain replaces for the usual
    spacing, which is fast; the regular expression catches any other whitespace)."""
    for lit in _LITERALS:
        if lit in data:
            for before in _BEFORE:
                data = data.replace(before + lit, before + b"null")
    if any(h in data for h in _NONFINITE_HINT):
        data = _NONFINITE.sub(rb"\1null", data)
    return data


def _utf8(text: bytes) -> bool:
    """Whether ``text`` is valid UTF-8 (ASCII checked at memory speed; anything else decoded once).

    msgspec does not check the bytes of a value it skips, so a typed batch could be read while a lazy
    field (a ship's name) holding invalid UTF-8 fails later, when the builder asks for it. Such a batch
    takes the dict path instead, where orjson refuses the line and it is dead-lettered.
    """
    if text.isascii():
        return True
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_array(lines: Sequence[bytes]) -> bytes:
    """``[line,line,...]`` in one copy (the brackets go onto the first and last line before the join)."""
    if not lines:
        return b"[]"
    parts = list(lines)
    parts[0] = b"[" + parts[0]
    parts[-1] = parts[-1] + b"]"
    return b",".join(parts)


class JsonlDecoder:
    """Decoder for one JSONL input (stateless between calls apart from caches).

    Parameters
    ----------
    source
        Name of the input, copied into positions and dead letters.
    columns
        ``{field: key}`` overrides of the schema's key names, e.g.
        ``{"id": "ssvid", "ts": "timestamp", "sog": "speed", "cog": "course"}``;
        a key may be a dotted path (``"position.lon"``).
    time_format
        strptime format for string times that are not ISO 8601.
    tz
        IANA zone of naive times (default UTC).
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
        line_is_offset: bool = False,
        max_line_bytes: int = 1 << 20,
    ) -> None:
        self.source = source
        keys = dict(JSONL_KEYS)
        keys.update(check_columns(columns))
        self._keys: dict[str, tuple[str, ...]] = {f: tuple(k.split(".")) if "." in k else (k,) for f, k in keys.items()}
        self._eager = {f: path for f, path in self._keys.items() if f not in LAZY_FIELDS}
        lazy_keys = {f: path for f, path in self._keys.items() if f in LAZY_FIELDS}
        self._typed = _record_decoder(self._eager, scalars=True)
        # per set of eager fields a batch holds, a decoder of just those (see _typed_columns)
        self._typed_present: dict[
            tuple[str, ...], tuple[msgspec.json.Decoder[Any] | None, msgspec.json.Decoder[Any] | None]
        ] = {}
        self._typed_number_ts = _record_decoder(self._eager, scalars=True, number_ts=True)
        # the distinct bytes of each eager field's quoted key, quote first (it is in every batch)
        self._key_chars = {
            f: [bytes([b]) for b in dict.fromkeys(orjson.dumps(path[0]))] for f, path in self._eager.items()
        }
        self._typed_lazy = _record_decoder(lazy_keys)
        self._typed_full = _record_decoder(self._keys)
        if self._typed_lazy is None or self._typed_full is None:  # e.g. two fields on one key
            self._typed = None
        self._scan: FlatScan | None = None
        if self._typed is not None:  # single keys, one per field
            keys = {f: path[0] for f, path in self._eager.items()}
            number_keys = {f: k for f, k in keys.items() if f == "ts" or f in _FLOAT_FIELDS}
            text_keys = {f: k for f, k in keys.items() if f not in _FLOAT_FIELDS}
            self._scan = FlatScan(number_keys, text_keys, text_int_as_str=("id",), required=("id",))
        self._is_offset = line_is_offset
        self._max_line = int(max_line_bytes)
        self._ctx = RecordContext(source, line_is_offset, TimeParser(time_format, tz))

    # ------------------------------------------------------------------ public

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode ``lines``; ``first_line`` is the 1-based line number (or offset) of ``lines[0]``.

        The cyclic garbage collector is paused for the call (:func:`geofence._gcpause.gc_paused`): a batch
        parse allocates one record per line, all alive until the columns are built and none part of a cycle.
        """
        with gc_paused():
            return self._feed(lines, first_line)

    def _feed(self, lines: Sequence[bytes], first_line: int) -> DecodeResult:
        counts = Counts()
        dead: list[DeadLetter] = []
        n = len(lines)
        if n == 0:
            return DecodeResult.empty()
        rec = self._flat_columns(lines, first_line)
        if rec is None:
            rec = self._typed_columns(lines, first_line)
        if rec is None:
            rec = self._dict_columns(lines, first_line, counts, dead)
            if rec is None:
                return DecodeResult(positions=PositionBatch.empty(), dead=dead, counts=counts)
        more: list[DeadLetter] = []
        batch, statics = build_records(self._ctx, rec, counts, more)
        if more:
            dead = sorted(dead + more, key=lambda d: d.line)
        return DecodeResult(positions=batch, statics=statics, dead=dead, counts=counts)

    def _typed_columns(self, lines: Sequence[bytes], first_line: int) -> RecordColumns | None:
        """Columns of a batch that msgspec decodes whole into typed records; None when any line does not fit."""
        if self._typed is None:
            return None
        text = _json_array(lines)
        n = len(lines)
        if (len(text) > self._max_line and max(map(len, lines)) > self._max_line) or not _utf8(text):
            return None
        present, typed, typed_number_ts = self._typed_for(text)
        if typed is None:
            return None
        numbers: dict[str, npt.NDArray[np.float64]] = {}
        recs = self._epoch_records(text, n, typed_number_ts, numbers)
        if recs is None:
            try:
                recs = typed.decode(text)
            except (msgspec.DecodeError, ValueError):  # ValidationError included; ValueError: invalid UTF-8
                return None
        if len(recs) != n:  # two objects on one line and none on another: the line numbers would be wrong
            return None
        cols: dict[str, list[Any]] = {}
        for name in self._eager:
            if name in numbers:
                continue
            if name not in present:  # no record has the key: what the decoder gives an absent key
                if name in _FLOAT_FIELDS:
                    numbers[name] = np.full(n, _NAN)
                elif name not in _DROP_IF_NULL:
                    cols[name] = [None] * n
                continue
            get = attrgetter(name)
            if name in _FLOAT_FIELDS:
                try:  # floats, or NaN where the key is absent; a JSON null (None) takes the list below
                    numbers[name] = np.fromiter(map(get, recs), dtype=np.float64, count=n)
                    continue
                except TypeError:
                    pass
            col = list(map(get, recs))  # scalars as orjson reads them (see _SCALAR)
            if name in _DROP_IF_NULL and col.count(None) == n:
                continue
            cols[name] = col
        line = np.arange(first_line, first_line + n, dtype=np.int64)
        return RecordColumns(
            cols, line, lines, text=False, maybe_bool=False, lazy=self._lazy_reader(lines, text), numbers=numbers
        )

    def _flat_columns(self, lines: Sequence[bytes], first_line: int) -> RecordColumns | None:
        """Columns of a batch of flat lines read by the compiled scan (:mod:`geofence.decode._jsonscan`);
        None when a line does not fit it or a time is not a valid epoch number (the typed path then reads
        the batch, and gives the same columns for a batch the scan reads)."""
        got = None if self._scan is None else self._scan(lines, self._max_line, _utf8)
        if got is None:
            return None
        numbers, texts = got
        ts = texts.pop("ts")
        cols = {name: col.values() for name, col in texts.items() if col is not None}
        if ts is None:  # epoch numbers in every line: valid ones go straight into the time column
            if not TimeParser.numbers_all_valid(numbers["ts"]):
                return None
        elif not np.isnan(numbers.pop("ts")).all():  # text times, unless some lines hold numbers
            return None
        else:  # text times: read from the batch's bytes when the time parser's vector path takes them all
            packed = ts.packed()
            seconds = None if packed is None else self._ctx.times.parse_packed(*packed)
            if seconds is None:
                cols["ts"] = ts.values()
            else:
                numbers["ts"] = seconds
        n = len(lines)
        line = np.arange(first_line, first_line + n, dtype=np.int64)
        return RecordColumns(
            cols, line, lines, text=False, maybe_bool=False, lazy=self._lazy_reader(lines, None), numbers=numbers
        )

    def _lazy_reader(self, lines: Sequence[bytes], text: bytes | None) -> Callable[[str, list[int]], list[Any] | None]:
        """The lazy fields of a typed batch: the builder asks field after field for the same rows, whose lines
        are decoded once (all lines, ``text`` or joined now, when a record spreads over lines)."""
        lazy_decoder, full_decoder = self._typed_lazy, self._typed_full
        assert lazy_decoder is not None and full_decoder is not None  # set together with self._typed
        asked: list[int] | None = None
        part: list[Any] = []

        def lazy(name: str, rows: list[int]) -> list[Any] | None:
            nonlocal asked, part
            if rows != asked:
                try:
                    part = lazy_decoder.decode(_json_array([lines[k] for k in rows]))
                except (msgspec.DecodeError, ValueError):  # a record spread over lines: read them all
                    whole = full_decoder.decode(_json_array(lines) if text is None else text)
                    part = [whole[k] for k in rows]
                asked = rows
            return _orjson_column(list(map(attrgetter(name), part)))

        return lazy

    @staticmethod
    def _epoch_records(
        text: bytes, n: int, decoder: msgspec.json.Decoder[Any] | None, numbers: dict[str, npt.NDArray[np.float64]]
    ) -> list[Any] | None:
        """The records of a batch whose times are all valid epoch numbers, ``ts`` put in ``numbers``; else None.

        The time column then skips the per-value type checks of the time parser. A batch with a
        text time fails the decode at its first one (cheaply, for a text-time feed); a batch
        with a missing, null or out-of-range time is read again the general way, so that its
        dead letters show the values as read.
        """
        if decoder is None:
            return None
        try:
            recs: list[Any] = decoder.decode(text)
        except (msgspec.DecodeError, ValueError):
            return None
        if len(recs) != n:
            return None
        ts = np.fromiter(map(_GET_TS, recs), dtype=np.float64, count=n)
        if not TimeParser.numbers_all_valid(ts):  # NaN (absent) and inf fail too
            return None
        numbers["ts"] = ts
        return recs

    def _typed_for(
        self, text: bytes
    ) -> tuple[tuple[str, ...], msgspec.json.Decoder[Any] | None, msgspec.json.Decoder[Any] | None]:
        """The eager fields that may occur in the batch ``text``, and typed decoders of just those.

        Feeds often leave some schema fields out (no heading, no receiver); a record type without
        them is faster to fill, and their columns need no reading. A key is proven absent when one
        of its characters occurs nowhere in the text (a single-byte search runs at memory speed;
        a search for the whole key would cost more than it saves). With a backslash anywhere a key
        could be spelt with escapes, so every field is read. The second decoder types ``ts`` as a
        number (None when ``ts`` is absent): epoch-time feeds, tried first.
        """
        if b"\\" in text:
            return tuple(self._eager), self._typed, self._typed_number_ts
        present = tuple(f for f, chars in self._key_chars.items() if all(c in text for c in chars))
        got = self._typed_present.get(present)
        if got is None:
            if len(self._typed_present) >= 32:  # bounded: a feed whose key sets keep changing
                self._typed_present.clear()
            keys = {f: self._eager[f] for f in present}
            number = _record_decoder(keys, scalars=True, number_ts=True) if "ts" in present else None
            got = self._typed_present[present] = (_record_decoder(keys, scalars=True), number)
        return present, got[0], got[1]

    def _dict_columns(
        self, lines: Sequence[bytes], first_line: int, counts: Counts, dead: list[DeadLetter]
    ) -> RecordColumns | None:
        """Columns of the lines orjson parses into objects (the bad ones dead-lettered); None when none does."""
        n = len(lines)
        recs: list[dict[str, Any]] = []
        idx: list[int] = []
        self._parse(lines, 0, n, recs, idx, counts, dead, first_line)
        if not recs:
            return None
        whole = len(recs) == n
        cols = self._columns(recs)
        line = np.arange(first_line, first_line + n, dtype=np.int64) if whole else first_line + np.asarray(idx)
        raws = lines if whole else [lines[i] for i in idx]
        keys = self._keys

        def lazy(name: str, rows: list[int]) -> list[Any] | None:
            path = keys[name]
            return [_dig(recs[k], path) for k in rows]

        return RecordColumns(cols, line, raws, text=False, maybe_bool=True, lazy=lazy)

    def close(self) -> DecodeResult:
        """End of input: JSONL keeps no partial records, so nothing is left."""
        return DecodeResult.empty()

    def snapshot(self) -> bytes:
        """Decoder state for a checkpoint (there is none: every line stands alone)."""
        return b"{}"

    def restore(self, data: bytes) -> None:
        """Restore :meth:`snapshot` output (nothing to restore)."""

    # ------------------------------------------------------------------ parsing

    def _parse(
        self,
        lines: Sequence[bytes],
        lo: int,
        hi: int,
        recs: list[dict[str, Any]],
        idx: list[int],
        counts: Counts,
        dead: list[DeadLetter],
        first_line: int,
    ) -> bytes | None:
        """Parse ``lines[lo:hi]`` into ``recs``/``idx``; bisect failing ranges. Returns the joined bytes of a
        range parsed in one go (only used when that range is everything)."""
        if hi - lo > _BISECT_MIN or (lo == 0 and hi == len(lines)):
            part = lines[lo:hi] if lo or hi != len(lines) else lines
            got, body = self._chunk(part)
            if got is not None:
                recs.extend(got)
                idx.extend(range(lo, hi))
                return body
        if hi - lo <= _BISECT_MIN:
            for i in range(lo, hi):
                self._one(lines[i], i, recs, idx, counts, dead, first_line)
            return None
        mid = (lo + hi) // 2
        self._parse(lines, lo, mid, recs, idx, counts, dead, first_line)
        self._parse(lines, mid, hi, recs, idx, counts, dead, first_line)
        return None

    def _chunk(self, part: Sequence[bytes]) -> tuple[list[dict[str, Any]] | None, bytes]:
        """All lines of ``part`` parsed by one ``orjson.loads`` of ``[line,line,...]``; None unless that gives
        exactly one object per line (a blank, broken or non-object line makes the count or types differ)."""
        n = len(part)
        text = _json_array(part)
        if len(text) > self._max_line and max(map(len, part)) > self._max_line:
            return None, text
        try:
            out = orjson.loads(text)
        except orjson.JSONDecodeError:
            if not any(h in text for h in _NONFINITE_HINT):
                return None, text
            try:
                out = orjson.loads(_fix_nonfinite(text))
            except orjson.JSONDecodeError:
                return None, text
        if len(out) != n or set(map(type, out)) != {dict}:
            return None, text
        return out, text

    def _one(
        self,
        line: bytes,
        i: int,
        recs: list[dict[str, Any]],
        idx: list[int],
        counts: Counts,
        dead: list[DeadLetter],
        first_line: int,
    ) -> None:
        text = line.strip()
        if not text:
            counts.input_lines += 1
            counts.skipped += 1
            return
        if len(line) > self._max_line:
            self._dead(counts, dead, first_line + i, "too_long", f"{len(line)} bytes > {self._max_line}", line)
            return
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            obj = None
            if any(h in text for h in _NONFINITE_HINT):
                try:
                    obj = orjson.loads(_fix_nonfinite(text))
                except orjson.JSONDecodeError:
                    obj = None
            if obj is None:
                self._dead(counts, dead, first_line + i, "unparseable", f"not JSON: {exc}", line)
                return
        if not isinstance(obj, dict):
            what = type(obj).__name__
            self._dead(counts, dead, first_line + i, "unparseable", f"JSON {what}, not an object", line)
            return
        recs.append(obj)
        idx.append(i)

    def _dead(self, counts: Counts, dead: list[DeadLetter], line: int, reason: str, detail: str, raw: bytes) -> None:
        counts.add_dead(reason)
        dead.append(DeadLetter(self.source, line, reason, detail, raw_text(raw), self._is_offset))

    # ------------------------------------------------------------------ columns

    def _columns(self, recs: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """One list per eagerly read field (one ``map`` of ``dict.get`` each)."""
        n = len(recs)
        cols: dict[str, list[Any]] = {}
        get = dict.get
        for name, path in self._eager.items():
            if len(path) == 1:
                try:  # a key every record has: ``r[key]`` via itemgetter is faster than ``dict.get``
                    cols[name] = list(map(itemgetter(path[0]), recs))
                except KeyError:  # some record lacks it (usually the first, which makes this cheap)
                    cols[name] = list(map(get, recs, repeat(path[0], n)))
            else:
                cols[name] = [_dig(r, path) for r in recs]
        return cols


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
