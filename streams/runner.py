"""The embedded asyncio runner behind ``geofence run``: sources → micro-batches → core → sinks.

Stages and backpressure
-----------------------
Live inputs (stdin, TCP, UDP, Kafka; :mod:`streams.sources`) each have a task
that puts micro-batches (``batch_size`` lines, or whatever arrived within
``max_delay_s``) on a bounded queue. File inputs share one task (see below). The
core task decodes live batches with that input's decoder and calls
``engine.process`` (in a worker thread, so the loop stays responsive), then puts
the alert lines and dead letters on a second bounded queue. The sink task writes
each batch to every sink and flushes them. With both queues bounded (``queue_batches``
each), a slow sink blocks the core, which blocks the sources: file reading pauses
and live sockets stop being read, instead of memory growing.

File inputs: event-time order
-----------------------------
File inputs are decoded once, in ``--input`` order (pass 1): each batch's
accounting and dead letters go down the pipeline as they are found, while its
positions and static reports go into a :class:`streams.order.RecordSorter`,
which holds at most ``sort_memory_bytes`` and spills sorted runs to a temporary
directory beyond that. Pass 2 hands the engine the records of all file inputs
merged in event-time order (stable: ties keep input order). A file already in
order is processed exactly in line order; one that is not (the Suez CSV is
grouped by vessel) is processed sorted, and the summary names it in
``sorted_inputs`` and ``notes``. Live inputs are not sorted: they rely on the
engine's reorder tolerance.

Checkpoints (``state_dir``)
---------------------------
Every ``checkpoint_every_s`` (and on shutdown) the core takes ``engine.snapshot()``
right after a batch, together with each input's offset (:class:`streams.checkpoint.InputOffset`:
file lines whose decode results are delivered, elements of the merge delivered,
live lines processed) and the running totals, and sends it down the sink queue as
a *barrier*. The sink task writes the checkpoint file only when it reaches the
barrier, i.e. after every sink has flushed the alerts of everything before it.
Hence at-least-once: after a crash, what came after the last checkpoint is
processed again and its alert lines re-emitted, identical by (alert_id, status,
ts); nothing is lost.

On resume the file inputs are decoded again from their start (the sort is
deterministic), without re-delivering the decode results already delivered, and
pass 2 skips the merged elements already delivered. A Kafka input's offsets are
committed only once they are covered by a checkpoint (without ``--state``: once
the sinks flushed), so its consumer group resumes where the checkpoint is. That
includes the final checkpoint, written after a stop ended the reading: live
sources are closed (``aclose()``) only after it.

Shutdown
--------
SIGINT/SIGTERM (handlers installed by :func:`run` only with ``handle_signals=True``,
as :func:`run_cli` does) stop the sources at a batch boundary; everything already
read is processed, flushed and checkpointed, and the process exits 0. ``engine.finish()``
is called only at the real end of input, never on a signal, so a restart carries on
with open alerts and timers. A second signal cancels at once (the last checkpoint stays valid).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np
import orjson

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter
from geofence.decode.accounting import Counts, DecodeResult
from geofence.engine_api import Engine, EngineStats
from geofence.errors import ConfigError, GeofenceError
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport
from streams.batcher import micro_batches
from streams.checkpoint import Checkpoint, InputOffset, load_checkpoint, save_checkpoint
from streams.order import DEFAULT_MEMORY_BYTES, MergedChunk, RecordSorter, static_effect_key
from streams.sinks import DeadLetterJsonlSink, Sink, open_sink
from streams.sources import RawLines, file_head, file_line_batches, open_source, parse_source_url, stdin_chunks
from streams.stats import RunStats
from streams.summary import build_summary, write_summary

__all__ = [
    "DecoderFactory",
    "DecoderLike",
    "DefaultEngineFactory",
    "EngineFactory",
    "FileInput",
    "LiveInput",
    "RunResult",
    "Runner",
    "StrictStop",
    "add_run_arguments",
    "main",
    "run",
    "run_cli",
]

_HEAD_BYTES = 65536
#: Longest wait for a live source to close at the end of a run (a Kafka consumer leaving its group).
_CLOSE_TIMEOUT_S = 15.0


class DecoderLike(Protocol):
    """What the runner needs of a decoder (``geofence.decode`` decoders fit)."""

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        """Decode lines; ``first_line`` is the 1-based number of ``lines[0]``."""
        ...

    def close(self) -> DecodeResult:
        """End of input (expire partial state to the dead letter)."""
        ...


#: ``(input name, first bytes of the input, live?) -> decoder``; the first bytes serve ``--format auto``.
DecoderFactory = Callable[[str, bytes, bool], DecoderLike]


class EngineFactory(Protocol):
    """How the CLI builds an engine: fresh or from a checkpoint (same shape as the faust workers')."""

    def new(self, zones: ZoneSet) -> Engine:
        """A fresh engine."""
        ...

    def restore(self, data: bytes, zones: ZoneSet) -> Engine:
        """An engine restored from ``Engine.snapshot()`` bytes."""
        ...


class StrictStop(GeofenceError):
    """``--strict``: the first rejected record stops the run (carries the dead letter)."""

    def __init__(self, dead: DeadLetter) -> None:
        where = "offset" if dead.is_offset else "line"
        super().__init__(f"{dead.source} {where} {dead.line}: {dead.reason}: {dead.detail}")
        self.dead = dead


@dataclass(frozen=True, slots=True)
class FileInput:
    """A file (plain or gzip, detected by magic bytes), processed in event-time order; resumable."""

    path: Path

    @property
    def name(self) -> str:
        """The input's name in positions, dead letters and checkpoints."""
        return str(self.path)


@dataclass(frozen=True, slots=True)
class LiveInput:
    """A live source (stdin, TCP, UDP, Kafka): an async iterable of raw line chunks, not resumable.

    When the iterable has an ``async commit_lines(n)`` method (Kafka), the runner
    calls it with the number of lines, counted from this start, that are durable.
    When it has an ``async aclose()`` method, the runner calls it once at the end of
    the run, after the last ``commit_lines`` (which may come after reading stopped).
    """

    name: str
    open: Callable[[], AsyncIterable[Sequence[bytes]]]


Input = FileInput | LiveInput


@dataclass(slots=True)
class RunResult:
    """What a run did; :meth:`summary` gives the event-time summary mapping."""

    inputs: list[str]
    counts: Counts
    alert_lines: int
    alert_lines_by_type: dict[str, int]
    alert_lines_by_status: dict[str, int]
    engine_stats: EngineStats | None
    finished: bool
    resumed: bool
    checkpoints_written: int
    stats: RunStats
    max_lines_in_flight: int = 0
    #: File inputs that were not in event-time order and were processed sorted.
    sorted_inputs: list[str] = field(default_factory=list)
    #: All file inputs (merged into one event-time order).
    file_inputs: list[str] = field(default_factory=list)
    #: Sorted runs spilled to disk (0 when the files fit in the sort memory); stderr only.
    spill_runs: int = 0

    def notes(self) -> list[str]:
        """Human-readable remarks for the summary (deterministic: no paths of temp files, no timings)."""
        out = [
            f"{name}: not in event-time order; processed sorted by event time (stable: ties keep line order)"
            for name in self.sorted_inputs
        ]
        if len(self.file_inputs) > 1:
            out.append(f"{len(self.file_inputs)} file inputs processed as one stream merged by event time")
        return out

    def summary(self, zone_version: str | None = None) -> dict[str, Any]:
        """The ``--summary`` mapping (no wall-clock figures)."""
        return build_summary(
            inputs=self.inputs,
            counts=self.counts,
            alert_lines=self.alert_lines,
            alert_lines_by_type=self.alert_lines_by_type,
            alert_lines_by_status=self.alert_lines_by_status,
            engine=self.engine_stats,
            finished=self.finished,
            zone_version=zone_version,
            sorted_inputs=self.sorted_inputs,
            notes=self.notes(),
        )


# -- queue items -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Raw:
    """Lines of a live input, decoded by the core."""

    idx: int
    lines: list[bytes]
    first_line: int
    end_line: int
    arrival_ts_s: float | None


@dataclass(slots=True)
class _Decoded:
    """Pass 1 of a file: accounting and dead letters of lines up to ``end_line`` (records went to the sorter)."""

    idx: int
    result: DecodeResult
    end_line: int
    n_lines: int
    closed: bool = False


@dataclass(slots=True)
class _Merged:
    """Pass 2: a slice of all file inputs' records in event-time order."""

    chunk: MergedChunk


class _Tick:
    """Time passed: checkpoint if something was processed since the last one (idle live inputs)."""


@dataclass(slots=True)
class _End:
    idx: int
    stopped: bool  # True: stopped by a signal (no decoder.close(), not eof)
    already: bool = False  # the input had ended before the checkpoint we resumed from


@dataclass(slots=True)
class _Out:
    alerts: list[Alert]
    dead: list[DeadLetter]
    units: int  # lines (live, pass 1) or merged elements (pass 2): for the in-flight figure
    idx: int | None = None  # live input whose lines up to end_line this makes durable
    end_line: int | None = None


@dataclass(slots=True)
class _Barrier:
    ckpt: Checkpoint


class _Done:
    pass


@dataclass(slots=True)
class _InputState:
    name: str
    live: bool
    decoder: DecoderLike | None = None
    lines: int = 0
    closed: bool = False
    records: int = 0
    reordered: bool = False
    eof: bool = False
    ended: bool = False
    source: object = None  # the live iterable (for commit_lines)
    carried: list[StaticReport] = field(default_factory=list)  # live: static reports not yet in effect
    base_line: int = 0  # live: lines counted before this process started reading


# -- the runner ------------------------------------------------------------------------------------


class Runner:
    """One run of the pipeline; see the module docstring. Prefer :func:`run`."""

    def __init__(
        self,
        inputs: Sequence[Input],
        decoder_factory: DecoderFactory,
        engine: Engine,
        sinks: Sequence[Sink],
        dead_letter_sink: DeadLetterJsonlSink | None = None,
        *,
        batch_size: int = 4096,
        max_delay_s: float = 0.05,
        queue_batches: int = 4,
        state_dir: str | Path | None = None,
        resume: Checkpoint | None = None,
        checkpoint_every_s: float = 5.0,
        stats_every_s: float = 10.0,
        stats_stream: TextIO | None = None,
        strict: bool = False,
        core_in_thread: bool = True,
        sort_memory_bytes: int = DEFAULT_MEMORY_BYTES,
        sort_dir: str | Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1")
        if queue_batches < 1:
            raise ConfigError(f"queue_batches={queue_batches} must be >= 1")
        if max_delay_s <= 0:
            raise ConfigError(f"max_delay_s={max_delay_s} must be > 0")
        if sort_memory_bytes <= 0:
            raise ConfigError(f"sort_memory_bytes={sort_memory_bytes} must be > 0 (e.g. --sort-memory-mb 256)")
        self.inputs = list(inputs)
        if not self.inputs:
            raise ConfigError("no inputs; give at least one --input (use '-' for stdin)")
        self.decoder_factory = decoder_factory
        self.engine = engine
        self.sinks = list(sinks)
        self.dead_sink = dead_letter_sink
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.queue_batches = queue_batches
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.checkpoint_every_s = checkpoint_every_s
        self.stats_every_s = stats_every_s
        self.stats_stream = stats_stream
        self.strict = strict
        self.core_in_thread = core_in_thread
        self.sort_memory_bytes = sort_memory_bytes
        self.sort_dir = sort_dir
        self.stats = RunStats()
        self._stop = asyncio.Event()
        self._states = [_InputState(i.name, isinstance(i, LiveInput)) for i in self.inputs]
        self._counts = Counts()
        self._alert_lines = 0
        self._by_type: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._seq = 0
        self._finished = False
        self._resumed_finished = False
        self._processed_since_resume = False
        self._ckpts_written = 0
        self._last_ckpt_mono = time.monotonic()
        self._dirty = False  # processed something since the last checkpoint
        self._engine_stats: EngineStats | None = None
        self._q_in: asyncio.Queue[_Raw | _Decoded | _Merged | _End | _Tick] | None = None
        self._q_out: asyncio.Queue[_Out | _Barrier | _Done] | None = None
        # Backpressure figures: units (lines, or merged records) put on queue_in minus units through the sinks.
        self.lines_read = 0
        self.lines_delivered = 0
        self.max_lines_in_flight = 0
        self.source_blocked_s = 0.0
        self.spill_runs = 0
        self._resume = resume
        if resume is not None:
            self._apply_resume(resume)

    # -- resume --------------------------------------------------------------------
    def _apply_resume(self, ckpt: Checkpoint) -> None:
        names = [i.name for i in ckpt.inputs]
        if names != [s.name for s in self._states]:
            raise ConfigError(
                f"the checkpoint in {self.state_dir} was written for inputs {names}, not "
                f"{[s.name for s in self._states]}; pass the same --input list or use a fresh --state directory"
            )
        for st, off in zip(self._states, ckpt.inputs, strict=True):
            st.lines, st.eof, st.closed, st.records, st.reordered = (
                off.lines,
                off.eof,
                off.closed,
                off.records,
                off.reordered,
            )
        t = ckpt.totals
        counts = t.get("counts") or {}
        reasons = dict(counts.get("dead_letter_reasons") or {})
        kwargs = {k: int(v) for k, v in counts.items() if k != "dead_letter_reasons" and hasattr(self._counts, k)}
        self._counts = Counts(**kwargs, dead_letter_reasons=reasons)
        self._alert_lines = int(t.get("alert_lines", 0))
        self._by_type = Counter({k: int(v) for k, v in (t.get("alert_lines_by_type") or {}).items()})
        self._by_status = Counter({k: int(v) for k, v in (t.get("alert_lines_by_status") or {}).items()})
        self._seq = ckpt.seq
        self._resumed_finished = ckpt.finished
        self._finished = ckpt.finished

    def request_stop(self) -> None:
        """Ask the sources to stop at the next batch boundary (what SIGINT/SIGTERM do)."""
        self._stop.set()

    # -- sources -------------------------------------------------------------------
    async def _put_in(self, item: _Raw | _Decoded | _Merged | _End | _Tick) -> None:
        q_in = self._q_in
        if q_in is None:
            raise RuntimeError("runner queues not set up")
        if q_in.full():  # backpressure: the source waits here while downstream is busy
            t0 = time.monotonic()
            await q_in.put(item)
            self.source_blocked_s += time.monotonic() - t0
        else:
            q_in.put_nowait(item)
        units = _units(item)
        if units:
            self.lines_read += units
            self.max_lines_in_flight = max(self.max_lines_in_flight, self.lines_read - self.lines_delivered)

    async def _files_source(self, idxs: list[int]) -> None:
        """Pass 1 (decode every file into the sorter) then pass 2 (the merge); see the module docstring."""
        states = [self._states[i] for i in idxs]
        if all(st.eof for st in states):  # finished before the checkpoint; nothing more to read
            for i in idxs:
                await self._put_in(_End(i, stopped=False, already=True))
            return
        sorter = RecordSorter(self.sort_memory_bytes, self.sort_dir)
        merged: list[Generator[MergedChunk, None, None]] = []
        try:
            completed = await self._sorted_files(idxs, sorter, merged)
        finally:  # before the last _End: the run is over once the core has seen it
            await asyncio.to_thread(_close_sorter, sorter, merged[0] if merged else None)
        await self._end_files(idxs, stopped=not completed)

    async def _sorted_files(
        self, idxs: list[int], sorter: RecordSorter, merged: list[Generator[MergedChunk, None, None]]
    ) -> bool:
        """Both passes; False when a stop was requested."""
        for i in idxs:
            if not await self._decode_file(i, sorter):
                return False
        for i in idxs:
            self._states[i].reordered = sorter.reordered(i)
        skip = sum(self._states[i].records for i in idxs)
        merged.append(await asyncio.to_thread(sorter.merge, self.batch_size, skip))  # spills the last run, if any
        self.spill_runs = sorter.runs
        while True:
            if self._stop.is_set():
                return False
            chunk = await asyncio.to_thread(next, merged[0], None)
            if chunk is None:
                return True
            await self._put_in(_Merged(chunk))

    async def _end_files(self, idxs: list[int], *, stopped: bool) -> None:
        for i in idxs:
            await self._put_in(_End(i, stopped=stopped))

    async def _decode_file(self, idx: int, sorter: RecordSorter) -> bool:
        """Pass 1 over one file; False when a stop was requested."""
        st = self._states[idx]
        inp = self.inputs[idx]
        if not isinstance(inp, FileInput) or st.decoder is None:
            raise RuntimeError(f"input {st.name} is not a file with a decoder")
        done = st.lines  # lines whose decode results were delivered before the checkpoint we resumed from
        last_line = 0
        batches = file_line_batches(inp.path, self.batch_size)
        try:
            while True:
                if self._stop.is_set():
                    return False
                step = await asyncio.to_thread(self._pass1_step, idx, batches, st.decoder, sorter, done)
                if step is None:
                    break
                raw, result = step
                last_line = raw.end_line
                if result is not None:
                    await self._put_in(_Decoded(idx, result, raw.end_line, len(raw.lines)))
        finally:
            with contextlib.suppress(ValueError):  # "generator already executing" after a cancel
                batches.close()
        result = await asyncio.to_thread(self._pass1_feed, idx, st.decoder, sorter, None, 0)
        if not st.closed:
            await self._put_in(_Decoded(idx, result, max(last_line, done), 0, closed=True))
        return True

    def _pass1_step(
        self, idx: int, batches: Generator[RawLines, None, None], dec: DecoderLike, sorter: RecordSorter, done: int
    ) -> tuple[RawLines, DecodeResult | None] | None:
        """Read and decode the next batch (worker thread); result None for lines delivered before a resume."""
        raw = next(batches, None)
        if raw is None:
            return None
        if raw.end_line <= done:  # warm-up: rebuild decoder state and the sort, output was delivered before
            self._pass1_feed(idx, dec, sorter, raw.lines, raw.first_line)
            return raw, None
        if raw.first_line <= done:  # the resume point falls inside this batch: split it there
            cut = done - raw.first_line + 1
            self._pass1_feed(idx, dec, sorter, raw.lines[:cut], raw.first_line)
            raw = RawLines(raw.lines[cut:], done + 1, raw.end_line)
        return raw, self._pass1_feed(idx, dec, sorter, raw.lines, raw.first_line)

    @staticmethod
    def _pass1_feed(
        idx: int, dec: DecoderLike, sorter: RecordSorter, lines: list[bytes] | None, first_line: int
    ) -> DecodeResult:
        """Decode (``lines=None``: close the decoder); records go to the sorter, the rest is returned."""
        res = dec.close() if lines is None else dec.feed(lines, first_line, None)
        sorter.add(idx, res.positions, res.statics)
        return DecodeResult(positions=PositionBatch.empty(), dead=list(res.dead), counts=res.counts)

    async def _live_source(self, idx: int, inp: LiveInput) -> None:
        st = self._states[idx]
        line_no = st.base_line = st.lines
        stopped = False
        pending: asyncio.Future[None] | None = None
        st.source = source = inp.open()
        batches = micro_batches(source, max_lines=self.batch_size, max_delay_s=self.max_delay_s)
        try:
            # aclosing: a stop ends the batcher's read of the source now, not whenever the generator is collected.
            async with contextlib.aclosing(batches):
                async for lines in batches:
                    raw = _Raw(idx, list(lines), line_no + 1, line_no + len(lines), time.time())
                    line_no += len(lines)
                    # Shielded: a stop while waiting for queue space must not drop a batch already read.
                    pending = asyncio.ensure_future(self._put_in(raw))
                    await asyncio.shield(pending)
                    pending = None
                    if self._stop.is_set():
                        stopped = True
                        break
        except asyncio.CancelledError:
            stopped = True
            if pending is not None:
                await pending
        await self._put_in(_End(idx, stopped=stopped))

    # -- core ----------------------------------------------------------------------
    def _decoder_for(self, idx: int, head: bytes) -> DecoderLike:
        st = self._states[idx]
        if st.decoder is None:
            st.decoder = self.decoder_factory(st.name, head, st.live)
        return st.decoder

    def _core_step(self, item: _Raw | _Decoded | _Merged | _End | _Tick) -> list[_Out | _Barrier]:
        """Decode/engine for one queue item (runs in a worker thread); returns what to send on."""
        out: list[_Out | _Barrier] = []
        if isinstance(item, _Tick):
            due = time.monotonic() - self._last_ckpt_mono >= self.checkpoint_every_s
            if self._dirty and self.state_dir is not None and due:
                out.append(self._barrier())
            return out
        if isinstance(item, _Raw):
            st = self._states[item.idx]
            dec = st.decoder or self._decoder_for(item.idx, b"\n".join(item.lines[:2000])[:_HEAD_BYTES])
            result = dec.feed(item.lines, item.first_line, item.arrival_ts_s)
            out.append(self._handle(result, len(item.lines), item.idx, item.end_line))
            st.lines = item.end_line
        elif isinstance(item, _Decoded):
            st = self._states[item.idx]
            self._processed_since_resume = True
            out.append(self._account([], list(item.result.dead), item.result.counts, units=item.n_lines))
            st.lines = item.end_line
            st.closed = st.closed or item.closed
        elif isinstance(item, _Merged):
            out.append(self._merged(item.chunk))
        else:
            st = self._states[item.idx]
            st.ended = True
            if st.live and (item.stopped or st.decoder is None or item.already) and st.carried:
                self.engine.add_statics(st.carried)  # a stop: the checkpoint's engine state includes them
                st.carried = []
            if not item.stopped:
                st.eof = True
                if st.live and st.decoder is not None and not item.already:
                    out.append(self._handle(st.decoder.close(), 0, item.idx))
        if all(s.ended for s in self._states):
            if all(s.eof for s in self._states) and not (self._resumed_finished and not self._processed_since_resume):
                eo = self.engine.finish()
                out.append(self._account(eo.alerts, list(eo.dead), Counts(), engine_dead=eo.dead))
                self._finished = True
            if self.state_dir is not None:
                out.append(self._barrier())
        elif self.state_dir is not None and time.monotonic() - self._last_ckpt_mono >= self.checkpoint_every_s:
            out.append(self._barrier())
        return out

    def _handle(self, result: DecodeResult, n_lines: int, idx: int, end_line: int | None = None) -> _Out:
        """A live batch: positions through the engine, static reports applied where they take effect."""
        self._processed_since_resume = True
        st = self._states[idx]
        alerts: list[Alert] = []
        engine_dead: list[DeadLetter] = []
        chunk, st.carried = _place_statics(result.positions, [*st.carried, *result.statics])
        if end_line is None and st.carried:  # end of the input: nothing later to wait for
            chunk.statics.extend((len(result.positions), 0, r) for r in st.carried)
            st.carried = []
        for statics, part in chunk.segments():
            if statics:
                self.engine.add_statics(statics)
            if len(part):
                eo = self.engine.process(part)
                alerts.extend(eo.alerts)
                engine_dead.extend(eo.dead)
        return self._account(
            alerts,
            [*result.dead, *engine_dead],
            result.counts,
            engine_dead=engine_dead,
            reached=result.counts.positions,
            units=n_lines,
            idx=idx,
            end_line=end_line,
        )

    def _merged(self, chunk: MergedChunk) -> _Out:
        """Pass 2: the merged records through the engine, static reports applied where they fall."""
        self._processed_since_resume = True
        alerts: list[Alert] = []
        engine_dead: list[DeadLetter] = []
        for statics, part in chunk.segments():
            if statics:
                self.engine.add_statics(statics)
            if len(part):
                eo = self.engine.process(part)
                alerts.extend(eo.alerts)
                engine_dead.extend(eo.dead)
        for src, n in chunk.per_input().items():
            self._states[src].records += n
        return self._account(
            alerts, engine_dead, Counts(), engine_dead=engine_dead, reached=len(chunk.positions), units=chunk.elements
        )

    def _account(
        self,
        alerts: list[Alert],
        dead: list[DeadLetter],
        counts: Counts,
        *,
        engine_dead: Sequence[DeadLetter] = (),
        reached: int = 0,
        units: int = 0,
        idx: int | None = None,
        end_line: int | None = None,
    ) -> _Out:
        """Add one step's figures to the totals; ``reached`` = positions handed to the engine (before lateness)."""
        self._dirty = True
        self._counts.merge(counts)
        for reason, n in Counter(d.reason for d in engine_dead).items():
            self._counts.move_to_dead(min(n, self._counts.positions), reason)
        if self.strict and dead:
            raise StrictStop(dead[0])
        self._alert_lines += len(alerts)
        self._by_type.update(a.type.value for a in alerts)
        self._by_status.update(a.status.value for a in alerts)
        self._engine_stats = self.engine.stats()
        self.stats.engine = self._engine_stats
        self.stats.record(
            input_lines=counts.input_lines,
            positions=max(0, reached - len(engine_dead)),
            dead_letter=len(dead),
            alert_lines=len(alerts),
        )
        return _Out(alerts, dead, units, idx, end_line)

    def _totals(self) -> dict[str, Any]:
        return {
            "counts": self._counts.to_dict(),
            "alert_lines": self._alert_lines,
            "alert_lines_by_type": dict(sorted(self._by_type.items())),
            "alert_lines_by_status": dict(sorted(self._by_status.items())),
        }

    def _barrier(self) -> _Barrier:
        self._seq += 1
        self._dirty = False
        self._last_ckpt_mono = time.monotonic()
        inputs = tuple(
            InputOffset(
                name=s.name, lines=s.lines, eof=s.eof, closed=s.closed, records=s.records, reordered=s.reordered
            )
            for s in self._states
        )
        ckpt = Checkpoint(
            seq=self._seq,
            engine_state=self.engine.snapshot(),
            inputs=inputs,
            totals=self._totals(),
            finished=self._finished,
        )
        return _Barrier(ckpt)

    async def _core(self) -> None:
        q_in, q_out = self._q_in, self._q_out
        if q_in is None or q_out is None:
            raise RuntimeError("runner queues not set up")
        while True:
            item = await q_in.get()
            if self.core_in_thread:
                outs = await asyncio.to_thread(self._core_step, item)
            else:
                outs = self._core_step(item)
            for o in outs:
                await q_out.put(o)
            if all(s.ended for s in self._states):
                await q_out.put(_Done())
                return

    # -- sinks ---------------------------------------------------------------------
    async def _sink_stage(self) -> None:
        q_out = self._q_out
        if q_out is None:
            raise RuntimeError("runner queues not set up")
        while True:
            item = await q_out.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Barrier):
                if self.state_dir is not None:
                    await asyncio.to_thread(save_checkpoint, self.state_dir, item.ckpt)
                    self._ckpts_written += 1
                    for k, off in enumerate(item.ckpt.inputs):
                        await self._commit(k, off.lines)
                continue
            # Every write is flushed before the next item, so a batch with nothing to write needs no flush.
            flushes: list[Awaitable[None]] = []
            if item.alerts:
                for sink in self.sinks:
                    await sink.write(item.alerts)
                flushes.extend(s.flush() for s in self.sinks)
            if item.dead and self.dead_sink is not None:
                await self.dead_sink.write(item.dead)
                flushes.append(self.dead_sink.flush())
            if flushes:
                await asyncio.gather(*flushes)
            self.lines_delivered += item.units
            if self.state_dir is None and item.idx is not None and item.end_line is not None:
                await self._commit(item.idx, item.end_line)

    async def _commit(self, idx: int, end_line: int) -> None:
        """Tell a live source (Kafka) that its lines up to ``end_line`` are durable."""
        st = self._states[idx]
        hook = getattr(st.source, "commit_lines", None)
        if st.live and hook is not None and end_line > st.base_line:
            await hook(end_line - st.base_line)

    async def _tick_loop(self) -> None:
        """While inputs are idle, let the core checkpoint what it processed (and a Kafka input commit it)."""
        if self.state_dir is None:
            return
        interval = max(self.checkpoint_every_s, 0.05)
        q_in = self._q_in
        while True:
            await asyncio.sleep(interval)
            if self._dirty and q_in is not None and q_in.empty():  # a busy core checkpoints on its own
                q_in.put_nowait(_Tick())

    async def _stats_loop(self) -> None:
        if self.stats_every_s <= 0:
            return
        stream = self.stats_stream if self.stats_stream is not None else sys.stderr
        while True:
            await asyncio.sleep(self.stats_every_s)
            q_in, q_out = self._q_in, self._q_out
            line = self.stats.line(
                (0 if q_in is None else q_in.qsize(), self.queue_batches),
                (0 if q_out is None else q_out.qsize(), self.queue_batches),
            )
            print(line, file=stream, flush=True)

    # -- main ------------------------------------------------------------------------
    async def run(self, *, handle_signals: bool = False) -> RunResult:
        """Run until every input ends (or a stop is requested); return the result."""
        self._q_in = asyncio.Queue(maxsize=self.queue_batches)
        self._q_out = asyncio.Queue(maxsize=self.queue_batches)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        main_task = asyncio.current_task()

        def on_signal() -> None:
            if self._stop.is_set() and main_task is not None:
                main_task.cancel()  # second signal: stop now
            self.request_stop()

        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, on_signal)
                    installed.append(sig)
        started: list[Sink | DeadLetterJsonlSink] = []
        try:
            to_start: list[Sink | DeadLetterJsonlSink] = list(self.sinks)
            if self.dead_sink is not None:
                to_start.append(self.dead_sink)
            for sink in to_start:
                await sink.start()
                started.append(sink)
            for idx, inp in enumerate(self.inputs):  # file decoders exist up front (format from the head)
                if isinstance(inp, FileInput):
                    self._decoder_for(idx, file_head(inp.path, _HEAD_BYTES))
            await self._pipeline()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for sink in started:
                try:
                    await sink.close()
                except Exception as exc:
                    print(f"geofence: closing {sink.name} failed: {exc}", file=sys.stderr)
        return RunResult(
            inputs=[s.name for s in self._states],
            counts=self._counts,
            alert_lines=self._alert_lines,
            alert_lines_by_type=dict(self._by_type),
            alert_lines_by_status=dict(self._by_status),
            engine_stats=self._engine_stats if self._engine_stats is not None else self.engine.stats(),
            finished=self._finished,
            resumed=self._resume is not None,
            checkpoints_written=self._ckpts_written,
            stats=self.stats,
            max_lines_in_flight=self.max_lines_in_flight,
            sorted_inputs=[s.name for s in self._states if s.reordered],
            file_inputs=[s.name for s in self._states if not s.live],
            spill_runs=self.spill_runs,
        )

    async def _pipeline(self) -> None:
        sources: list[asyncio.Task[None]] = []
        live: list[asyncio.Task[None]] = []
        files = [idx for idx, inp in enumerate(self.inputs) if isinstance(inp, FileInput)]
        if files:
            sources.append(asyncio.create_task(self._files_source(files), name="source files"))
        for idx, inp in enumerate(self.inputs):
            if isinstance(inp, LiveInput):
                task = asyncio.create_task(self._live_source(idx, inp), name=f"source {inp.name}")
                sources.append(task)
                live.append(task)

        async def stop_live() -> None:
            await self._stop.wait()
            for t in live:
                t.cancel()

        helpers = [
            asyncio.create_task(self._stats_loop()),
            asyncio.create_task(stop_live()),
            asyncio.create_task(self._tick_loop()),
        ]
        core = asyncio.create_task(self._core(), name="core")
        sink = asyncio.create_task(self._sink_stage(), name="sinks")
        try:
            # The sink stage ends last (after _Done); any task failing ends the run with its error.
            pending: set[asyncio.Task[None]] = {*sources, core, sink}
            while sink in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
        finally:
            for t in [*sources, core, sink, *helpers]:
                t.cancel()
            await asyncio.gather(*sources, core, sink, *helpers, return_exceptions=True)
            await self._close_live_sources()

    async def _close_live_sources(self) -> None:
        """``aclose()`` every live source that has one, after the last commit (the Kafka consumer lives until now)."""
        for st in self._states:
            close = getattr(st.source, "aclose", None)
            if not st.live or close is None:
                continue
            try:
                await asyncio.wait_for(close(), timeout=_CLOSE_TIMEOUT_S)
            except TimeoutError:
                print(f"geofence: closing input {st.name} took over {_CLOSE_TIMEOUT_S:g} s; left", file=sys.stderr)
            except Exception as exc:
                print(f"geofence: closing input {st.name} failed: {exc}", file=sys.stderr)


def _place_statics(positions: PositionBatch, statics: Sequence[StaticReport]) -> tuple[MergedChunk, list[StaticReport]]:
    """A live batch with its static reports placed where they take effect, as in the merge of file inputs.

    Each goes before the first position at or after the next whole minute of event
    time after its own time (:func:`streams.order.static_effect_key`), so that a
    vessel's new voyage data does not reach positions reported before it just because
    they share a batch; without a time, at the start. Reports whose minute is not
    reached in this batch are returned, to be placed in the next one.
    """
    placed: list[tuple[int, int, StaticReport]] = []
    carried: list[StaticReport] = []
    ts = np.asarray(positions.ts_s, dtype=np.float64)
    for r in statics:
        if r.ts_s is None:
            placed.append((0, 0, r))
            continue
        later = np.flatnonzero(ts > static_effect_key(r.ts_s))
        if later.size:
            placed.append((int(later[0]), 0, r))
        else:
            carried.append(r)
    placed.sort(key=lambda x: x[0])  # stable: reports keep their order at one place
    return MergedChunk(positions, np.zeros(len(positions), dtype=np.int64), placed), carried


def _units(item: _Raw | _Decoded | _Merged | _End | _Tick) -> int:
    if isinstance(item, _Raw):
        return len(item.lines)
    if isinstance(item, _Decoded):
        return item.n_lines
    if isinstance(item, _Merged):
        return item.chunk.elements
    return 0


def _close_sorter(sorter: RecordSorter, merged: Generator[MergedChunk, None, None] | None) -> None:
    sorter.close()
    if merged is not None:
        with contextlib.suppress(ValueError):  # still running in a cancelled worker thread: it stops on its own
            merged.close()


async def run(
    inputs: Sequence[Input],
    decoder_factory: DecoderFactory,
    engine: Engine,
    sinks: Sequence[Sink],
    dead_letter_sink: DeadLetterJsonlSink | None = None,
    *,
    batch_size: int = 4096,
    max_delay_s: float = 0.05,
    queue_batches: int = 4,
    state_dir: str | Path | None = None,
    resume: Checkpoint | None = None,
    checkpoint_every_s: float = 5.0,
    stats_every_s: float = 10.0,
    stats_stream: TextIO | None = None,
    strict: bool = False,
    handle_signals: bool = False,
    sort_memory_bytes: int = DEFAULT_MEMORY_BYTES,
    sort_dir: str | Path | None = None,
) -> RunResult:
    """Run the embedded pipeline over ``inputs`` and return its :class:`RunResult`.

    Parameters
    ----------
    inputs
        :class:`FileInput` (resumable) and :class:`LiveInput` sources.
    decoder_factory
        Builds one decoder per input from its name, first bytes and liveness.
    engine
        The core engine (fresh, or restored from ``resume.engine_state`` by the caller).
    sinks
        Alert sinks (not yet started; the runner starts and closes them).
    dead_letter_sink
        Where rejected records go; ``None`` only counts them.
    batch_size
        Lines per micro-batch (size bound).
    max_delay_s
        Time bound of a live micro-batch (50 ms default).
    queue_batches
        Capacity of each bounded queue (source→core, core→sinks), in batches.
    state_dir
        Checkpoint directory (``--state``); ``None`` disables checkpoints.
    resume
        The checkpoint loaded from ``state_dir`` the engine was restored from; offsets and totals continue.
    checkpoint_every_s
        Minimum interval between periodic checkpoints (one is always written at the end).
    stats_every_s
        Stats line interval on stderr; ``0`` disables it.
    stats_stream
        Where stats lines go (default ``sys.stderr``).
    strict
        Stop with :class:`StrictStop` at the first dead letter.
    handle_signals
        Install SIGINT/SIGTERM handlers for a clean stop (entry points only).
    sort_memory_bytes
        Memory of the event-time sort of file inputs before it spills runs to disk.
    sort_dir
        Parent directory of the sort's spill files (default: the system temp dir).
    """
    runner = Runner(
        inputs,
        decoder_factory,
        engine,
        sinks,
        dead_letter_sink,
        batch_size=batch_size,
        max_delay_s=max_delay_s,
        queue_batches=queue_batches,
        state_dir=state_dir,
        resume=resume,
        checkpoint_every_s=checkpoint_every_s,
        stats_every_s=stats_every_s,
        stats_stream=stats_stream,
        strict=strict,
        sort_memory_bytes=sort_memory_bytes,
        sort_dir=sort_dir,
    )
    return await runner.run(handle_signals=handle_signals)


# -- CLI glue ----------------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``geofence run`` (shared by ``geofence_cli/cmd_run.py`` and ``python -m streams.runner``)."""
    parser.add_argument(
        "--zones",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="fence files (default: the built-in Yangtze catalogue)",
    )
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="SRC",
        help="file (plain/.gz), '-' (stdin), tcp://, udp://, kafka://host:port/topic; repeatable",
    )
    parser.add_argument("--format", default="auto", choices=("auto", "nmea", "csv", "jsonl"))
    parser.add_argument(
        "--columns", default=None, metavar="MAP", help="id=COL,ts=COL,lon=COL,lat=COL[,sog=,cog=,heading=]"
    )
    parser.add_argument("--time-format", default=None, metavar="FMT", help="strptime format of the ts column")
    parser.add_argument("--tz", default="UTC", help="time zone of naive times (default UTC)")
    parser.add_argument(
        "--untimed-start", default=None, metavar="ISO", help="synthetic clock start for untimed records"
    )
    parser.add_argument("--untimed-step-s", type=float, default=1.0, help="synthetic clock step (default 1 s)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad record (exit 1)")
    parser.add_argument(
        "--alerts",
        action="append",
        default=[],
        metavar="URL",
        help="alert sink, repeatable: stdout | FILE.jsonl | sqlite:///a.db | kafka://h:p/topic | http(s)://",
    )
    parser.add_argument("--dead-letter", default=None, metavar="FILE", help="dead-letter JSONL file")
    parser.add_argument("--summary", default=None, metavar="FILE", help="run summary JSON (no wall-clock figures)")
    parser.add_argument("--plans", default=None, metavar="FILE", help="voyage plans for route deviation")
    parser.add_argument("--rules", default=None, metavar="FILE", help="rules file")
    parser.add_argument("--baseline", default=None, metavar="FILE", help="learned baseline (dwell percentiles)")
    parser.add_argument("--state", default=None, metavar="DIR", help="checkpoint directory; a restart resumes from it")
    parser.add_argument("--batch-size", type=int, default=4096, help="lines per micro-batch (default 4096)")
    parser.add_argument("--max-delay-ms", type=float, default=50.0, help="max wait of a live micro-batch (default 50)")
    parser.add_argument("--queue-batches", type=int, default=4, help="bounded queue capacity in batches (default 4)")
    parser.add_argument("--checkpoint-every-s", type=float, default=5.0, help="checkpoint interval (default 5 s)")
    parser.add_argument("--stats-every-s", type=float, default=10.0, help="stats line interval, 0 = off (default 10)")
    parser.add_argument(
        "--sort-memory-mb",
        type=float,
        default=DEFAULT_MEMORY_BYTES / (1 << 20),
        metavar="MB",
        help="memory for sorting file inputs by event time before spilling to $TMPDIR (default 256)",
    )
    parser.add_argument(
        "--spool-dir", default=None, metavar="DIR", help="webhook spool (default STATE/spool or $TMPDIR)"
    )
    parser.add_argument("--webhook-format", default="ndjson", choices=("ndjson", "json"), help="webhook body format")
    parser.add_argument(
        "--webhook-drain-timeout-s",
        type=float,
        default=30.0,
        help="on exit, how long to retry undelivered webhook batches (they stay spooled after)",
    )


class DefaultEngineFactory:
    """The real engine ``geofence.engine.Engine`` with the CLI's ``--rules``, ``--baseline`` and ``--plans``.

    ``--rules`` is TOML (JSON by ``.json`` suffix) for ``RulesConfig``; ``--baseline`` is the
    JSON written by ``geofence learn``; ``--plans`` is JSONL validated against the zone set
    by ``geofence.rules.route.parse_plans``.
    """

    def __init__(self, rules: str | None, baseline: str | None, plans: str | None) -> None:
        self._options: dict[str, Any] = {}
        self._plans_path = plans
        self._plan_lines: list[tuple[int, Any]] | None = None  # read once: every engine gets the same plans
        if rules:
            from geofence.rules.config import RulesConfig

            try:
                text = Path(rules).read_text(encoding="utf-8")
                is_json = rules.endswith(".json")
                self._options["config"] = (
                    RulesConfig.from_mapping(orjson.loads(text)) if is_json else RulesConfig.from_toml(text)
                )
            except (OSError, UnicodeDecodeError, orjson.JSONDecodeError, GeofenceError) as exc:
                raise ConfigError(f"--rules {rules}: {exc}") from None
        if baseline:
            from geofence.baseline import Baseline

            try:
                self._options["baseline"] = Baseline.from_dict(orjson.loads(Path(baseline).read_bytes()))
            except (OSError, orjson.JSONDecodeError, GeofenceError) as exc:
                raise ConfigError(f"--baseline {baseline}: {exc}; learn one with `geofence learn`") from None

    def _kwargs(self, zones: ZoneSet) -> dict[str, Any]:
        kwargs = dict(self._options)
        if self._plans_path:
            from geofence.rules.route import parse_plans

            if self._plan_lines is None:
                records: list[tuple[int, Any]] = []
                for n, line in enumerate(Path(self._plans_path).read_bytes().splitlines(), start=1):
                    if not line.strip():
                        continue
                    try:
                        records.append((n, orjson.loads(line)))
                    except orjson.JSONDecodeError as exc:
                        msg = f"{self._plans_path}:{n}: not a JSON object ({exc}); one plan per line"
                        raise ConfigError(msg) from None
                self._plan_lines = records
            kwargs["plans"] = parse_plans(self._plan_lines, zones, source=self._plans_path)
        return kwargs

    def new(self, zones: ZoneSet) -> Engine:
        """A fresh engine."""
        from geofence.engine import Engine as RealEngine

        engine: Engine = RealEngine(zones, **self._kwargs(zones))
        return engine

    def restore(self, data: bytes, zones: ZoneSet) -> Engine:
        """An engine restored from a checkpoint's snapshot."""
        from geofence.engine import Engine as RealEngine

        engine: Engine = RealEngine.restore(data, zones=zones, **self._kwargs(zones))
        return engine


def _parse_columns(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, col = part.partition("=")
        if not sep or not key.strip() or not col.strip():
            raise ConfigError(
                f"--columns part {part!r} is not KEY=COLUMN; e.g. id=MMSI,ts=BaseDateTime,lon=LON,lat=LAT"
            )
        out[key.strip()] = col.strip()
    return out


def default_decoder_factory(args: argparse.Namespace) -> DecoderFactory:
    """Decoders from ``geofence.decode`` chosen by ``--format`` (or detected), with the CLI's options.

    Keyword options a decoder class does not accept are not passed (the CSV and
    JSONL decoders take ``columns``/``time_format``/``tz``; NMEA takes the untimed clock).
    """
    import geofence.decode as dec
    from geofence.timefmt import parse_iso_utc

    untimed = None if args.untimed_start is None else parse_iso_utc(args.untimed_start)
    options: dict[str, Any] = {
        "untimed_start_s": untimed,
        "untimed_step_s": args.untimed_step_s,
        "columns": _parse_columns(args.columns),
        "time_format": args.time_format,
        "tz": args.tz,
    }
    names = {"nmea": "NmeaDecoder", "csv": "CsvDecoder", "jsonl": "JsonlDecoder"}

    def make(name: str, head: bytes, live: bool) -> DecoderLike:
        fmt = dec.detect_format(head) if args.format == "auto" else args.format
        cls = getattr(dec, names[fmt], None)
        if cls is None:
            raise ConfigError(f"input {name}: no {fmt} decoder in geofence.decode (expected {names[fmt]})")
        params = inspect.signature(cls).parameters
        kw = {k: v for k, v in options.items() if k in params and v is not None}
        if "live" in params:
            kw["live"] = live
        if "line_is_offset" in params:
            kw["line_is_offset"] = live
        decoder: DecoderLike = cls(name, **kw)
        return decoder

    return make


def build_inputs(specs: Sequence[str]) -> list[Input]:
    """Map ``--input`` values to runner inputs: files are resumable and sorted, everything else is live.

    URLs are validated here (a bad one is a :class:`ConfigError`, exit 2); live
    sources open only when the run starts.
    """
    out: list[Input] = []
    for spec in specs or ["-"]:
        if spec == "-":
            out.append(LiveInput("-", stdin_chunks))
        elif "://" in spec and not spec.startswith("file://"):
            parse_source_url(spec)
            out.append(LiveInput(spec, _bind_opener(spec)))
        else:
            path = Path(spec.removeprefix("file://"))
            if not path.is_file():
                raise ConfigError(f"input {spec!r} is not a file; give a readable path, '-' for stdin, or a URL")
            out.append(FileInput(path))
    return out


def _check_numbers(args: argparse.Namespace) -> None:
    """Refuse numeric options out of range before anything is built (exit 2)."""
    for name, value, low in (
        ("--batch-size", args.batch_size, 1),
        ("--queue-batches", args.queue_batches, 1),
        ("--max-delay-ms", args.max_delay_ms, 1e-9),
        ("--sort-memory-mb", args.sort_memory_mb, 1e-9),
        ("--untimed-step-s", args.untimed_step_s, 1e-9),
    ):
        if not value >= low:
            raise ConfigError(f"{name} {value} must be > 0")


def _bind_opener(url: str) -> Callable[[], AsyncIterable[Sequence[bytes]]]:
    return lambda: open_source(url)


def _setup_logging() -> None:
    """Source and sink notices (reconnects, spooling) on stderr as ``geofence: ...`` lines."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("geofence: %(message)s"))
        root.addHandler(handler)
    logger = logging.getLogger("streams")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def run_cli(
    args: argparse.Namespace,
    *,
    engine_factory: EngineFactory | None = None,
    decoder_factory: DecoderFactory | None = None,
    stats_stream: TextIO | None = None,
) -> int:
    """``geofence run``: args → inputs, decoders, engine, sinks → :func:`run` → summary → exit code.

    Exit codes: 0 done (or stopped cleanly by a signal), 1 ``--strict`` found a bad
    record, 2 bad options, 3 runtime failure. ``engine_factory``/``decoder_factory``
    replace the real ones (tests).
    """
    err = stats_stream if stats_stream is not None else sys.stderr
    _setup_logging()
    try:
        _check_numbers(args)
        inputs = build_inputs(args.input)
        from zones.catalogue import default_catalogue_path
        from zones.loader import load_zones

        zones = load_zones(args.zones or [default_catalogue_path()])
        factory = engine_factory or DefaultEngineFactory(args.rules, args.baseline, args.plans)
        ckpt = load_checkpoint(args.state) if args.state else None
        engine = factory.new(zones) if ckpt is None else factory.restore(ckpt.engine_state, zones)
        decoders = decoder_factory or default_decoder_factory(args)
        sinks = [
            open_sink(
                url,
                state_dir=args.state,
                spool_dir=args.spool_dir,
                webhook_format=args.webhook_format,
                webhook_drain_timeout_s=args.webhook_drain_timeout_s,
            )
            for url in (args.alerts or ["-"])
        ]
        dead = DeadLetterJsonlSink(args.dead_letter) if args.dead_letter else None
        if ckpt is not None:
            print(f"geofence: resuming from checkpoint {ckpt.seq} in {args.state}", file=err)
    except (GeofenceError, OSError) as exc:
        print(f"geofence run: {exc}", file=err)
        return 2
    try:
        result = asyncio.run(
            run(
                inputs,
                decoders,
                engine,
                sinks,
                dead,
                batch_size=args.batch_size,
                max_delay_s=args.max_delay_ms / 1000.0,
                queue_batches=args.queue_batches,
                state_dir=args.state,
                resume=ckpt,
                checkpoint_every_s=args.checkpoint_every_s,
                stats_every_s=args.stats_every_s,
                stats_stream=stats_stream,
                strict=args.strict,
                handle_signals=True,
                sort_memory_bytes=int(args.sort_memory_mb * (1 << 20)),
            )
        )
    except StrictStop as exc:
        print(f"geofence run: --strict: {exc}", file=err)
        return 1
    except ConfigError as exc:  # found once the run started: a decoder option, a port to listen on, ...
        print(f"geofence run: {exc}", file=err)
        return 2
    except GeofenceError as exc:
        print(f"geofence run: {exc}", file=err)
        return 3
    except asyncio.CancelledError:
        print("geofence run: stopped by a second signal; the last checkpoint stays valid", file=err)
        return 3
    except Exception as exc:
        print(f"geofence run: {type(exc).__name__}: {exc}", file=err)
        return 3
    print(result.stats.final_line(), file=err)
    if result.sorted_inputs or result.spill_runs:
        print(
            f"geofence: sorted by event time: {', '.join(result.sorted_inputs) or 'no input needed it'}"
            f" ({result.spill_runs} run(s) spilled to disk)",
            file=err,
        )
    if args.summary:
        write_summary(args.summary, result.summary(zone_version=zones.version))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streams.runner``: the same options as ``geofence run``."""
    parser = argparse.ArgumentParser(prog="python -m streams.runner", description="embedded geofence runner")
    add_run_arguments(parser)
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
