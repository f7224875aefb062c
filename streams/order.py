"""Event-time order for file inputs: a stable external merge sort of decoded records in bounded memory.

Why
---
The engine judges lateness per subject and drives its timers by one watermark
(newest event time minus the reorder tolerance). A file grouped by vessel, such
as the Suez CSV, would move the watermark to the end of time after the first
vessel and make everything after it stale. Several file inputs read side by side
would do the same to each other. So the runner decodes every file input once
(pass 1), feeding the decoded records to a :class:`RecordSorter`, and then
processes the records of all file inputs merged in event-time order (pass 2).

Order
-----
The sort key of a record is ``(ts_s, seq)``. ``seq`` is ``input_index << 40 |
n`` where ``n`` numbers the records of that input in decode order, static
reports of one decoder call before its positions (the order the line path has
always applied them in). Keys are unique, so the order is total and the sort is
*stable*: equal times keep the input order, and inputs keep their ``--input``
order. A static report's key is its effect time (see below); without a time of
its own it takes the newest time seen before it in its input. A record with a
NaN time sorts last.

An input is *reordered* when its positions were not already in non-decreasing
time order, i.e. when sorting changed their processing order; the run summary
names those inputs. The positions of an input already in order are processed
exactly in line order. Static reports (a decoder call returns them apart from its
positions, so their place in the lines is not known) are placed by time: each
takes effect just before the first position at or after the next whole minute of
event time after its own (:func:`static_effect_key`).

Memory
------
Records are buffered as decoded (numpy columns) until their estimated size
(array bytes plus sampled string sizes per position, :data:`STATIC_BYTES` per
static report) reaches ``memory_bytes``; the buffer is then sorted and spilled as a *run* to a private
temporary directory (under ``spill_dir``, default ``$TMPDIR``): one ``.npy`` file
per numeric column (read back memory-mapped), the string columns and the static
reports as pickled blocks read sequentially. The merge keeps about
``memory_bytes`` of records loaded across all runs. When nothing was spilled the
records are merged from memory and no file is written. The directory is removed
by :meth:`RecordSorter.close`.

The merge loads a slice of every run, takes all loaded elements whose key is at
most the smallest "last loaded key" of the runs still holding unloaded data
(everything not loaded yet is above it), sorts them with ``np.lexsort`` and
hands them out in chunks of the requested size, with the static reports placed
between the positions they fall between. Chunks are cut on one grid of the merged
stream (every ``chunk`` elements; the remainder of a round waits for the next), so
the engine gets the same batches whether or how the records were spilled.
"""

from __future__ import annotations

import math
import pickle
import shutil
import sys
import tempfile
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt

from geofence.errors import ConfigError
from geofence.positions import PositionBatch, StaticReport

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "ROW_BYTES",
    "STATIC_BYTES",
    "STATIC_STEP_S",
    "MergedChunk",
    "RecordSorter",
    "static_effect_key",
]

#: Default buffer size of the sort (``--sort-memory-mb 256``).
DEFAULT_MEMORY_BYTES = 256 << 20
#: Typical memory of one buffered position (numeric columns, pointers, a short id string); the
#: buffer itself is sized from the actual arrays and strings, this figure sizes the merge's reads.
ROW_BYTES = 192
#: Estimated memory of one buffered static report.
STATIC_BYTES = 512

#: Static reports take effect on the next multiple of this many seconds of event time after their own time.
STATIC_STEP_S = 60.0

_SRC_SHIFT = 40
_NUM = ("ts_s", "lon_deg", "lat_deg", "sog_kn", "cog_deg", "heading_deg", "kind", "event", "line")
_OBJ = ("subject_id", "carrier_id", "event_zone", "receiver", "source")
_BLOCK_ROWS = 8192
_MIN_LOAD = 64

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class MergedChunk:
    """A slice of the merged stream: positions in event-time order, static reports placed between them.

    Attributes
    ----------
    positions
        The positions of the slice, in order.
    src
        The input index of each position.
    statics
        ``(index, input index, report)`` in order: apply ``report`` after
        ``positions[:index]`` and before ``positions[index:]``.
    """

    positions: PositionBatch
    src: I64
    statics: list[tuple[int, int, StaticReport]] = field(default_factory=list)

    @property
    def elements(self) -> int:
        """Positions plus static reports in the slice."""
        return len(self.positions) + len(self.statics)

    def per_input(self) -> dict[int, int]:
        """Elements (positions + static reports) of the slice per input index."""
        per: dict[int, int] = {}
        if len(self.src):
            ids, counts = np.unique(self.src, return_counts=True)
            per = {int(i): int(c) for i, c in zip(ids, counts, strict=True)}
        for _, src, _ in self.statics:
            per[src] = per.get(src, 0) + 1
        return per

    def segments(self) -> Iterator[tuple[list[StaticReport], PositionBatch]]:
        """``(static reports to add first, positions to process next)`` pairs covering the slice in order."""
        n = len(self.positions)
        statics = self.statics
        start = 0
        i = 0
        while True:
            group: list[StaticReport] = []
            while i < len(statics) and statics[i][0] <= start:
                group.append(statics[i][2])
                i += 1
            nxt = min(statics[i][0], n) if i < len(statics) else n
            part = self.positions if (start == 0 and nxt == n) else _rows(self.positions, start, nxt)
            if group or len(part):
                yield group, part
            if nxt >= n and i >= len(statics):
                return
            start = nxt


@dataclass(slots=True)
class _Cols:
    """Sorted records held in memory (a run being merged, or a loaded slice of one)."""

    key: F64
    seq: I64
    num: dict[str, npt.NDArray[Any]]
    obj: dict[str, npt.NDArray[np.object_]]

    def __len__(self) -> int:
        return int(self.key.shape[0])

    def take(self, index: Any) -> _Cols:
        return _Cols(
            self.key[index],
            self.seq[index],
            {k: v[index] for k, v in self.num.items()},
            {k: v[index] for k, v in self.obj.items()},
        )

    @staticmethod
    def concat(parts: Sequence[_Cols]) -> _Cols:
        return _Cols(
            np.concatenate([p.key for p in parts]),
            np.concatenate([p.seq for p in parts]),
            {k: np.concatenate([p.num[k] for p in parts]) for k in _NUM},
            {k: np.concatenate([p.obj[k] for p in parts]) for k in _OBJ},
        )

    def batch(self) -> PositionBatch:
        return PositionBatch(**{**self.num, **self.obj})


def static_effect_key(ts_s: float) -> float:
    """Sort key of a static report with time ``ts_s``: just before the next multiple of :data:`STATIC_STEP_S`.

    Why: applying each static report exactly between the positions it falls
    between would cut a batch into one engine call per report (AIS sends type 5
    every few minutes per vessel: a tenth of a feed). On a fixed event-time grid
    the reports of a minute take effect together, before the first position at
    or after the next whole minute: at most one cut per minute of event time,
    still independent of batch sizes, and within the precision of the engine,
    whose rules see a report once its positions leave the 60 s reorder buffer.
    """
    if not math.isfinite(ts_s):
        return ts_s
    edge = (math.floor(ts_s / STATIC_STEP_S) + 1.0) * STATIC_STEP_S
    return math.nextafter(edge, -math.inf)


def _rows(batch: PositionBatch, start: int, stop: int) -> PositionBatch:
    """Rows ``start:stop`` of ``batch`` (numpy views)."""
    return batch.take(cast(Any, slice(start, stop)))


def _estimate_bytes(cols: _Cols) -> int:
    """Memory held by buffered rows: array bytes, plus the string objects, sized from a sample.

    Decoders share one object for repeated values (the source name, an empty receiver)
    but usually make one string per row for ids; a sample of each string column tells
    which, at a cost independent of the batch size.
    """
    n = len(cols)
    total = cols.key.nbytes + cols.seq.nbytes + sum(int(a.nbytes) for a in cols.num.values())
    for col in cols.obj.values():
        total += 8 * n
        sample = col[:: max(1, n // 32)]
        if len(sample):
            distinct = {id(x): x for x in sample}
            if len(distinct) > 2:  # not a shared constant: count every row's own object
                total += n * sum(sys.getsizeof(x) for x in distinct.values()) // len(distinct)
    return int(total)


def _from_batch(batch: PositionBatch, seq: I64) -> _Cols:
    ts = np.asarray(batch.ts_s, dtype=np.float64)
    key = np.where(np.isnan(ts), np.inf, ts)
    num = {k: np.asarray(getattr(batch, k)) for k in _NUM}
    obj = {k: np.asarray(getattr(batch, k), dtype=object) for k in _OBJ}
    return _Cols(key, seq, num, obj)


def _empty_cols() -> _Cols:
    return _from_batch(PositionBatch.empty(), np.zeros(0, dtype=np.int64))


class _Stream:
    """A sorted sequence (positions or static reports) being merged: a cursor and a loaded slice."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.loaded_upto = 0  # elements loaded from the backing store so far

    @property
    def exhausted_store(self) -> bool:
        return self.loaded_upto >= self.total

    def close(self) -> None:
        """Release files and maps."""


class _RowStream(_Stream):
    """Positions of one run: in memory, or spilled (numeric columns memory-mapped, strings in pickled blocks)."""

    def __init__(self, cols: _Cols | None = None, directory: Path | None = None, total: int = 0) -> None:
        super().__init__(len(cols) if cols is not None else total)
        self._mem = cols
        self._dir = directory
        self._maps: dict[str, npt.NDArray[Any]] = {}
        self._obj_fh: BinaryIO | None = None
        self._obj_left: list[list[Any]] | None = None
        self.buf = _empty_cols()

    def load(self, n: int) -> None:
        """Append up to ``n`` more elements to the loaded slice ``buf``."""
        lo, hi = self.loaded_upto, min(self.total, self.loaded_upto + n)
        if hi <= lo:
            return
        part = self._mem.take(slice(lo, hi)) if self._mem is not None else self._read(lo, hi)
        self.buf = part if not len(self.buf) else _Cols.concat([self.buf, part])
        self.loaded_upto = hi

    def _read(self, lo: int, hi: int) -> _Cols:
        if self._dir is None:
            raise RuntimeError("spilled run without a directory")
        if not self._maps:
            for name in ("key", "seq", *_NUM):
                self._maps[name] = np.load(self._dir / f"{name}.npy", mmap_mode="r")
            self._obj_fh = open(self._dir / "obj.pkl", "rb")  # noqa: SIM115 - closed in close()
        want = hi - lo
        got: list[list[Any]] = [[] for _ in _OBJ]
        while want > 0:
            if not self._obj_left or not self._obj_left[0]:
                if self._obj_fh is None:
                    raise RuntimeError("spilled run closed while merging")
                self._obj_left = pickle.load(self._obj_fh)
            left = self._obj_left
            take = min(want, len(left[0]))
            for k in range(len(_OBJ)):
                got[k].extend(left[k][:take])
                left[k] = left[k][take:]
            want -= take
        obj = {}
        for k, name in enumerate(_OBJ):
            arr = np.empty(hi - lo, dtype=object)
            arr[:] = got[k]
            obj[name] = arr
        return _Cols(
            np.array(self._maps["key"][lo:hi]),
            np.array(self._maps["seq"][lo:hi]),
            {k: np.array(self._maps[k][lo:hi]) for k in _NUM},
            obj,
        )

    def close(self) -> None:
        self._maps.clear()
        if self._obj_fh is not None:
            self._obj_fh.close()
            self._obj_fh = None


class _StaticStream(_Stream):
    """Static reports of one run, as ``(key, seq, report)`` in key order."""

    def __init__(
        self, items: list[tuple[float, int, StaticReport]] | None = None, path: Path | None = None, total: int = 0
    ) -> None:
        super().__init__(len(items) if items is not None else total)
        self._mem = items
        self._path = path
        self._fh: BinaryIO | None = None
        self._left: list[tuple[float, int, StaticReport]] = []
        self.buf: list[tuple[float, int, StaticReport]] = []

    def load(self, n: int) -> None:
        lo, hi = self.loaded_upto, min(self.total, self.loaded_upto + n)
        if hi <= lo:
            return
        if self._mem is not None:
            self.buf.extend(self._mem[lo:hi])
        else:
            if self._fh is None:
                if self._path is None:
                    raise RuntimeError("spilled statics without a file")
                self._fh = open(self._path, "rb")  # noqa: SIM115 - closed in close()
            want = hi - lo
            while want > 0:
                if not self._left:
                    self._left = pickle.load(self._fh)
                take = self._left[:want]
                self._left = self._left[want:]
                self.buf.extend(take)
                want -= len(take)
        self.loaded_upto = hi

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass(slots=True)
class _Run:
    rows: int
    statics: int
    directory: Path


@dataclass(slots=True)
class _InputOrder:
    next_n: int = 0
    max_key: float = -math.inf
    last_ts: float | None = None
    reordered: bool = False
    records: int = 0


class RecordSorter:
    """Collect decoded records of one or more inputs, then yield them merged in event-time order.

    Parameters
    ----------
    memory_bytes
        Buffer size before a run is spilled, and about the memory the merge keeps loaded.
    spill_dir
        Parent of the private temporary directory (default: the system temp dir).

    Notes
    -----
    :meth:`add` and :meth:`merge` may be called from worker threads, one at a time;
    :meth:`close` waits for a call in progress.
    """

    def __init__(self, memory_bytes: int = DEFAULT_MEMORY_BYTES, spill_dir: str | Path | None = None) -> None:
        if memory_bytes <= 0:
            raise ConfigError(f"sort memory {memory_bytes} bytes must be > 0; e.g. --sort-memory-mb 256")
        self.memory_bytes = int(memory_bytes)
        self.spill_dir = None if spill_dir is None else Path(spill_dir)
        self._inputs: dict[int, _InputOrder] = {}
        self._buf_rows: list[_Cols] = []
        self._buf_statics: list[tuple[float, int, StaticReport]] = []
        self._buf_bytes = 0
        self._runs: list[_Run] = []
        self._tmp: Path | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._merging = False

    # -- pass 1 --------------------------------------------------------------------
    def add(self, src: int, positions: PositionBatch, statics: Sequence[StaticReport] = ()) -> None:
        """Buffer one decoder call's output of input ``src`` (statics first, then positions, in order)."""
        with self._lock:
            if self._closed or self._merging:
                raise RuntimeError("RecordSorter.add after merge() or close()")
            if not 0 <= src < (1 << 23):
                raise ValueError(f"input index {src} out of range")
            st = self._inputs.setdefault(src, _InputOrder())
            base = src << _SRC_SHIFT
            for r in statics:
                ts = r.ts_s if r.ts_s is not None and not math.isnan(r.ts_s) else st.last_ts
                if r.ts_s is not None and math.isfinite(r.ts_s):
                    st.last_ts = float(r.ts_s)
                key = -math.inf if ts is None else static_effect_key(float(ts))
                self._buf_statics.append((key, base | st.next_n, r))
                st.next_n += 1
            n = len(positions)
            if n:
                seq = base | np.arange(st.next_n, st.next_n + n, dtype=np.int64)
                st.next_n += n
                cols = _from_batch(positions, seq)
                run_max = np.maximum.accumulate(cols.key)
                if cols.key[0] < st.max_key or (n > 1 and bool(np.any(cols.key[1:] < run_max[:-1]))):
                    st.reordered = True
                st.max_key = max(st.max_key, float(run_max[-1]))
                finite = cols.key[np.isfinite(cols.key)]
                if finite.size:
                    st.last_ts = float(finite[-1])
                self._buf_rows.append(cols)
            st.records += n + len(statics)
            self._buf_bytes += (_estimate_bytes(self._buf_rows[-1]) if n else 0) + len(statics) * STATIC_BYTES
            if self._buf_bytes >= self.memory_bytes:
                self._spill()

    def reordered(self, src: int) -> bool:
        """True when the positions of input ``src`` were not in event-time order (sorting changed their order)."""
        st = self._inputs.get(src)
        return bool(st is not None and st.reordered)

    def records(self, src: int | None = None) -> int:
        """Elements (positions + static reports) added, for one input or all."""
        if src is None:
            return sum(s.records for s in self._inputs.values())
        st = self._inputs.get(src)
        return 0 if st is None else st.records

    @property
    def runs(self) -> int:
        """Runs spilled to disk so far."""
        return len(self._runs)

    def _sorted_buffer(self) -> tuple[_Cols, list[tuple[float, int, StaticReport]]]:
        rows = _Cols.concat(self._buf_rows) if self._buf_rows else _empty_cols()
        if len(rows):
            rows = rows.take(np.lexsort((rows.seq, rows.key)))
        statics = sorted(self._buf_statics, key=lambda x: (x[0], x[1]))
        self._buf_rows, self._buf_statics, self._buf_bytes = [], [], 0
        return rows, statics

    def _spill(self) -> None:
        rows, statics = self._sorted_buffer()
        if not len(rows) and not statics:
            return
        if self._tmp is None:
            if self.spill_dir is not None:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix="geofence-sort-", dir=self.spill_dir))
        directory = self._tmp / f"run{len(self._runs):06d}"
        directory.mkdir()
        if len(rows):
            np.save(directory / "key.npy", rows.key)
            np.save(directory / "seq.npy", rows.seq)
            for k in _NUM:
                np.save(directory / f"{k}.npy", rows.num[k])
            with open(directory / "obj.pkl", "wb") as fh:
                for lo in range(0, len(rows), _BLOCK_ROWS):
                    block = [rows.obj[k][lo : lo + _BLOCK_ROWS].tolist() for k in _OBJ]
                    pickle.dump(block, fh, protocol=pickle.HIGHEST_PROTOCOL)
        if statics:
            with open(directory / "statics.pkl", "wb") as fh:
                for lo in range(0, len(statics), _BLOCK_ROWS):
                    pickle.dump(statics[lo : lo + _BLOCK_ROWS], fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(_Run(len(rows), len(statics), directory))

    # -- pass 2 --------------------------------------------------------------------
    def merge(self, chunk_elements: int, skip: int = 0) -> Generator[MergedChunk, None, None]:
        """Yield every added element once, in ``(ts, seq)`` order, in chunks of at most ``chunk_elements``.

        ``skip`` drops the first elements of the merged stream (a resume that had
        delivered them). Call once, after the last :meth:`add`.
        """
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements={chunk_elements} must be >= 1")
        with self._lock:
            if self._merging or self._closed:
                raise RuntimeError("RecordSorter.merge called twice or after close()")
            self._merging = True
            if self._runs:
                self._spill()
                rows_streams: list[_RowStream] = [
                    _RowStream(directory=r.directory, total=r.rows) for r in self._runs if r.rows
                ]
                stat_streams: list[_StaticStream] = [
                    _StaticStream(path=r.directory / "statics.pkl", total=r.statics) for r in self._runs if r.statics
                ]
            else:
                rows, statics = self._sorted_buffer()
                rows_streams = [_RowStream(cols=rows)] if len(rows) else []
                stat_streams = [_StaticStream(items=statics)] if statics else []
        return self._merge(rows_streams, stat_streams, chunk_elements, skip)

    def _merge(
        self, rows_streams: list[_RowStream], stat_streams: list[_StaticStream], chunk: int, skip: int
    ) -> Generator[MergedChunk, None, None]:
        n_streams = len(rows_streams) + len(stat_streams)
        in_memory = not self._runs
        load = max(_MIN_LOAD, self.memory_bytes // ROW_BYTES // (n_streams + 1))
        # The elements of a round that do not fill a chunk wait for the next round: chunks are cut on one grid
        # of the merged stream (every ``chunk`` elements from ``skip``), whatever the runs and the sort memory.
        carry: tuple[_Cols, list[tuple[float, int, StaticReport]]] | None = None
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    taken = self._round(rows_streams, stat_streams, math.inf if in_memory else load)
                if taken is None:
                    break
                rows, statics = taken
                total = len(rows) + len(statics)
                if skip >= total:
                    skip -= total
                    continue
                if skip:
                    rows, statics = _tail(rows, statics, skip)
                    skip = 0
                if carry is not None:
                    rows, statics = _Cols.concat([carry[0], rows]), [*carry[1], *statics]
                carry = yield from _chunks(rows, statics, chunk, hold_partial=True)
            if carry is not None:
                yield from _chunks(*carry, chunk)
        finally:
            for s in [*rows_streams, *stat_streams]:
                s.close()

    @staticmethod
    def _round(
        rows_streams: list[_RowStream], stat_streams: list[_StaticStream], load: float
    ) -> tuple[_Cols, list[tuple[float, int, StaticReport]]] | None:
        """Take every loaded element not above the merge frontier; ``None`` when all are consumed."""
        n = int(min(load, 1 << 62))
        for rs in rows_streams:
            if not len(rs.buf) and not rs.exhausted_store:
                rs.load(n)
        for ss in stat_streams:
            if not ss.buf and not ss.exhausted_store:
                ss.load(n)
        fronts: list[tuple[float, int]] = []
        for rs in rows_streams:
            if len(rs.buf) and not rs.exhausted_store:
                fronts.append((float(rs.buf.key[-1]), int(rs.buf.seq[-1])))
        for ss in stat_streams:
            if ss.buf and not ss.exhausted_store:
                fronts.append((ss.buf[-1][0], ss.buf[-1][1]))
        if not any(len(rs.buf) for rs in rows_streams) and not any(ss.buf for ss in stat_streams):
            return None
        cut = min(fronts) if fronts else (math.inf, 1 << 62)
        parts: list[_Cols] = []
        for rs in rows_streams:
            if not len(rs.buf):
                continue
            k, s = rs.buf.key, rs.buf.seq
            n_take = int(np.count_nonzero((k < cut[0]) | ((k == cut[0]) & (s <= cut[1]))))
            if n_take:
                parts.append(rs.buf.take(slice(0, n_take)))
                rs.buf = rs.buf.take(slice(n_take, None))
        statics: list[tuple[float, int, StaticReport]] = []
        for ss in stat_streams:
            j = 0
            while j < len(ss.buf) and (ss.buf[j][0], ss.buf[j][1]) <= cut:
                j += 1
            statics.extend(ss.buf[:j])
            ss.buf = ss.buf[j:]
        rows = _Cols.concat(parts) if parts else _empty_cols()
        if len(parts) > 1:
            rows = rows.take(np.lexsort((rows.seq, rows.key)))
        statics.sort(key=lambda x: (x[0], x[1]))
        return rows, statics

    def close(self) -> None:
        """Remove the spill directory (waits for an ``add``/merge step in progress); idempotent."""
        with self._lock:
            self._closed = True
            self._buf_rows, self._buf_statics = [], []
            tmp, self._tmp = self._tmp, None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _insertions(rows: _Cols, statics: list[tuple[float, int, StaticReport]]) -> I64:
    """For each static report (in order), the number of positions whose ``(key, seq)`` is below its own."""
    if not statics:
        return np.zeros(0, dtype=np.int64)
    s_key = np.array([s[0] for s in statics], dtype=np.float64)
    s_seq = np.array([s[1] for s in statics], dtype=np.int64)
    lo = np.searchsorted(rows.key, s_key, side="left")
    hi = np.searchsorted(rows.key, s_key, side="right")
    return np.array(
        [int(a + np.searchsorted(rows.seq[a:b], q)) for a, b, q in zip(lo, hi, s_seq, strict=True)],
        dtype=np.int64,
    )


def _tail(
    rows: _Cols, statics: list[tuple[float, int, StaticReport]], start: int
) -> tuple[_Cols, list[tuple[float, int, StaticReport]]]:
    """The elements of a merge round from element ``start`` on (positions and static reports in merged order)."""
    ins = _insertions(rows, statics)
    stat_elem = ins + np.arange(len(statics), dtype=np.int64)
    s0 = int(np.searchsorted(stat_elem, start))  # static reports before element ``start``
    return rows.take(slice(start - s0, None)), statics[s0:]


def _chunks(
    rows: _Cols, statics: list[tuple[float, int, StaticReport]], chunk: int, *, hold_partial: bool = False
) -> Generator[MergedChunk, None, tuple[_Cols, list[tuple[float, int, StaticReport]]] | None]:
    """Cut merged elements into slices of ``chunk`` elements (the last one may be shorter).

    With ``hold_partial`` a last slice shorter than ``chunk`` is not yielded but returned
    as ``(rows, statics)``, to be continued by the next merge round.
    """
    n_rows = len(rows)
    ins = _insertions(rows, statics)
    total = n_rows + len(statics)
    pos_elem = np.arange(n_rows, dtype=np.int64) + np.searchsorted(ins, np.arange(n_rows), side="right")
    stat_elem = ins + np.arange(len(statics), dtype=np.int64)
    for a in range(0, total, chunk):
        b = min(total, a + chunk)
        p0, p1 = int(np.searchsorted(pos_elem, a)), int(np.searchsorted(pos_elem, b))
        s0, s1 = int(np.searchsorted(stat_elem, a)), int(np.searchsorted(stat_elem, b))
        if hold_partial and b - a < chunk:
            return rows.take(slice(p0, None)), statics[s0:]
        part = rows.take(slice(p0, p1))
        stats_part = [(int(ins[j]) - p0, int(statics[j][1] >> _SRC_SHIFT), statics[j][2]) for j in range(s0, s1)]
        yield MergedChunk(part.batch(), part.seq >> _SRC_SHIFT, stats_part)
    return None
