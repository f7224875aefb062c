"""The embedded asyncio runner behind ``geofence run``: sources → micro-batches → core → sinks.

Stages and backpressure
-----------------------
One task per input reads lines and puts micro-batches (``batch_size`` lines, or
whatever a live source delivered within ``max_delay_s``) on a bounded queue. The
core task decodes each batch with that input's decoder and calls
``engine.process`` (in a worker thread, so the loop stays responsive), then puts
the alert lines and dead letters on a second bounded queue. The sink task writes
each batch to every sink and flushes them. With both queues bounded (``queue_batches``
each), a slow sink blocks the core, which blocks the sources: file reading pauses
and live sockets stop being read, instead of memory growing.

Checkpoints (``state_dir``)
---------------------------
Every ``checkpoint_every_s`` (and on shutdown) the core takes ``engine.snapshot()``
right after a batch, together with each input's offset (lines fully processed,
byte offset for plain files, decoder state when the decoder can snapshot) and the
running totals, and sends it down the sink queue as a *barrier*. The sink task
writes the checkpoint file only when it reaches the barrier, i.e. after every
sink has flushed the alerts of everything before it. Hence at-least-once: after a
crash, the lines since the last checkpoint are processed again and their alert
lines re-emitted, identical by (alert_id, status, ts); nothing is lost.

On resume a file input continues after its offset. A decoder without a snapshot
is rebuilt by re-decoding the prefix and discarding the output ("warm-up"), so
multipart groups, dedupe memory, CSV headers and the untimed clock are exactly as
before the crash.

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
import gzip
import inspect
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TextIO

import orjson

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter
from geofence.decode.accounting import Counts, DecodeResult
from geofence.engine_api import Engine, EngineStats
from geofence.errors import ConfigError, GeofenceError
from geofence.fence import ZoneSet
from streams.batcher import micro_batches
from streams.checkpoint import Checkpoint, InputOffset, load_checkpoint, save_checkpoint
from streams.sinks import DeadLetterJsonlSink, Sink, open_sink
from streams.stats import RunStats
from streams.summary import build_summary, write_summary

__all__ = [
    "DecoderFactory",
    "DecoderLike",
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
_READ_HINT = 1 << 20


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
    """A file (plain or gzip, detected by magic bytes); resumable from an offset."""

    path: Path

    @property
    def name(self) -> str:
        """The input's name in positions, dead letters and checkpoints."""
        return str(self.path)


@dataclass(frozen=True, slots=True)
class LiveInput:
    """A live source (stdin, TCP, UDP, Kafka): an async iterable of raw line chunks, not resumable."""

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
        )


# -- queue items -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Raw:
    idx: int
    lines: list[bytes]
    first_line: int
    end_line: int
    end_byte: int | None
    arrival_ts_s: float | None
    warmup: bool = False


@dataclass(slots=True)
class _End:
    idx: int
    stopped: bool  # True: stopped by a signal (no decoder.close())
    closed_before: bool = False  # the input had ended before the checkpoint we resumed from


@dataclass(slots=True)
class _Out:
    alerts: list[Alert]
    dead: list[DeadLetter]
    lines: int


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
    bytes: int | None = None
    eof: bool = False
    ended: bool = False


# -- file reading --------------------------------------------------------------------------------


def _open_binary(path: Path) -> tuple[BinaryIO, bool]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb"), True  # type: ignore[return-value]
    return open(path, "rb"), False


def _head(path: Path) -> bytes:
    fh, _ = _open_binary(path)
    with fh:
        return fh.read(_HEAD_BYTES)


def _file_batches(path: Path, start_line: int, start_byte: int | None, batch_size: int) -> Iterator[_Raw]:
    """Yield batches of raw lines (newline stripped) after the first ``start_line`` lines.

    For plain files with a known ``start_byte`` the file is sought; otherwise the
    first ``start_line`` lines are read and skipped.
    """
    fh, compressed = _open_binary(path)
    with fh:
        line_no = 0
        pos: int | None = None if compressed else 0
        if start_line and start_byte is not None and not compressed:
            fh.seek(start_byte)
            line_no, pos = start_line, start_byte
        pending: list[bytes] = []
        while True:
            chunk = fh.readlines(_READ_HINT)
            if not chunk:
                break
            if line_no < start_line:
                skip = min(start_line - line_no, len(chunk))
                if pos is not None:
                    pos += sum(len(x) for x in chunk[:skip])
                line_no += skip
                chunk = chunk[skip:]
            pending.extend(chunk)
            while len(pending) >= batch_size:
                batch, pending = pending[:batch_size], pending[batch_size:]
                yield _make_raw(batch, line_no, pos)
                line_no += len(batch)
                if pos is not None:
                    pos += sum(len(x) for x in batch)
        if pending:
            yield _make_raw(pending, line_no, pos)


def _make_raw(raw_lines: list[bytes], done_before: int, pos: int | None) -> _Raw:
    end_byte = None if pos is None else pos + sum(len(x) for x in raw_lines)
    return _Raw(
        idx=-1,
        lines=[x.rstrip(b"\r\n") for x in raw_lines],
        first_line=done_before + 1,
        end_line=done_before + len(raw_lines),
        end_byte=end_byte,
        arrival_ts_s=None,
    )


async def stdin_chunks() -> AsyncIterator[list[bytes]]:
    """Lines of standard input as they arrive (a live source: no offsets)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    try:
        rest = b""
        while True:
            data = await reader.read(_READ_HINT)
            if not data:
                break
            parts = (rest + data).split(b"\n")
            rest = parts.pop()
            yield [p.rstrip(b"\r") for p in parts]
        if rest:
            yield [rest.rstrip(b"\r")]
    finally:
        transport.close()


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
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1")
        if queue_batches < 1:
            raise ConfigError(f"queue_batches={queue_batches} must be >= 1")
        if max_delay_s <= 0:
            raise ConfigError(f"max_delay_s={max_delay_s} must be > 0")
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
        self._engine_stats: EngineStats | None = None
        self._q_in: asyncio.Queue[_Raw | _End] | None = None
        self._q_out: asyncio.Queue[_Out | _Barrier | _Done] | None = None
        # Backpressure figures: lines read by sources minus lines through the sinks.
        self.lines_read = 0
        self.lines_delivered = 0
        self.max_lines_in_flight = 0
        self.source_blocked_s = 0.0
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
            st.lines, st.bytes, st.eof = off.lines, off.bytes, off.eof
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
    async def _put_in(self, item: _Raw | _End) -> None:
        q_in = self._q_in
        if q_in is None:
            raise RuntimeError("runner queues not set up")
        if q_in.full():  # backpressure: the source waits here while downstream is busy
            t0 = time.monotonic()
            await q_in.put(item)
            self.source_blocked_s += time.monotonic() - t0
        else:
            q_in.put_nowait(item)
        if isinstance(item, _Raw) and not item.warmup:
            self.lines_read += len(item.lines)
            self.max_lines_in_flight = max(self.max_lines_in_flight, self.lines_read - self.lines_delivered)

    async def _file_source(self, idx: int, inp: FileInput) -> None:
        st = self._states[idx]
        if st.eof:  # finished before the checkpoint; nothing more to read
            await self._put_in(_End(idx, stopped=False, closed_before=True))
            return
        off = self._resume.inputs[idx] if self._resume is not None else None
        restored = off is not None and off.decoder_state is not None and _restore_decoder(st.decoder, off.decoder_state)
        start = st.lines if restored else 0
        warm_until = 0 if restored else st.lines
        for raw in _file_batches(inp.path, start, st.bytes if restored else None, self.batch_size):
            if self._stop.is_set():
                await self._put_in(_End(idx, stopped=True))
                return
            raw.idx = idx
            if raw.end_line <= warm_until:
                raw.warmup = True
            elif raw.first_line <= warm_until:  # batch straddles the resume point: split it
                cut = warm_until - raw.first_line + 1
                await self._put_in(_Raw(idx, raw.lines[:cut], raw.first_line, warm_until, None, None, warmup=True))
                raw = _Raw(idx, raw.lines[cut:], warm_until + 1, raw.end_line, raw.end_byte, None)
            await self._put_in(raw)
            await asyncio.sleep(0)
        await self._put_in(_End(idx, stopped=self._stop.is_set()))

    async def _live_source(self, idx: int, inp: LiveInput) -> None:
        st = self._states[idx]
        line_no = st.lines
        stopped = False
        pending: asyncio.Future[None] | None = None
        try:
            async for lines in micro_batches(inp.open(), max_lines=self.batch_size, max_delay_s=self.max_delay_s):
                raw = _Raw(idx, list(lines), line_no + 1, line_no + len(lines), None, time.time())
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

    def _core_step(self, item: _Raw | _End) -> list[_Out | _Barrier]:
        """Decode + engine for one queue item (runs in a worker thread); returns what to send on."""
        out: list[_Out | _Barrier] = []
        st = self._states[item.idx]
        if isinstance(item, _Raw):
            dec = st.decoder or self._decoder_for(item.idx, b"\n".join(item.lines[:2000])[:_HEAD_BYTES])
            result = dec.feed(item.lines, item.first_line, item.arrival_ts_s)
            if item.warmup:  # re-decoding the prefix only rebuilds decoder state; output was delivered before
                return out
            out.append(self._handle(result, len(item.lines)))
            st.lines, st.bytes = item.end_line, item.end_byte
        else:
            st.ended = True
            if not item.stopped:
                st.eof = True
                if st.decoder is not None and not item.closed_before:
                    out.append(self._handle(st.decoder.close(), 0))
        if all(s.ended for s in self._states):
            if all(s.eof for s in self._states) and not (self._resumed_finished and not self._processed_since_resume):
                eo = self.engine.finish()
                out.append(self._account(eo.alerts, eo.dead, DecodeResult.empty(), 0))
                self._finished = True
            if self.state_dir is not None:
                out.append(self._barrier())
        elif self.state_dir is not None and time.monotonic() - self._last_ckpt_mono >= self.checkpoint_every_s:
            out.append(self._barrier())
        return out

    def _handle(self, result: DecodeResult, n_lines: int) -> _Out:
        self._processed_since_resume = True
        if result.statics:
            self.engine.add_statics(result.statics)
        if len(result.positions):
            eo = self.engine.process(result.positions)
            return self._account(eo.alerts, [*result.dead, *eo.dead], result, n_lines, engine_dead=eo.dead)
        return self._account([], list(result.dead), result, n_lines)

    def _account(
        self,
        alerts: list[Alert],
        dead: list[DeadLetter],
        result: DecodeResult,
        n_lines: int,
        engine_dead: Sequence[DeadLetter] = (),
    ) -> _Out:
        self._counts.merge(result.counts)
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
            input_lines=result.counts.input_lines,
            positions=result.counts.positions - len(engine_dead),
            dead_letter=len(dead),
            alert_lines=len(alerts),
        )
        return _Out(alerts, dead, n_lines)

    def _totals(self) -> dict[str, Any]:
        return {
            "counts": self._counts.to_dict(),
            "alert_lines": self._alert_lines,
            "alert_lines_by_type": dict(sorted(self._by_type.items())),
            "alert_lines_by_status": dict(sorted(self._by_status.items())),
        }

    def _barrier(self) -> _Barrier:
        self._seq += 1
        self._last_ckpt_mono = time.monotonic()
        inputs = tuple(
            InputOffset(
                name=s.name,
                lines=s.lines,
                bytes=s.bytes,
                eof=s.eof,
                decoder_state=_decoder_snapshot(s.decoder),
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
                continue
            if item.alerts:
                for sink in self.sinks:
                    await sink.write(item.alerts)
            if item.dead and self.dead_sink is not None:
                await self.dead_sink.write(item.dead)
            flushes = [s.flush() for s in self.sinks]
            if self.dead_sink is not None:
                flushes.append(self.dead_sink.flush())
            await asyncio.gather(*flushes)
            self.lines_delivered += item.lines

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
            for idx, inp in enumerate(self.inputs):  # file decoders exist up front (resume may restore them)
                if isinstance(inp, FileInput):
                    self._decoder_for(idx, _head(inp.path))
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
        )

    async def _pipeline(self) -> None:
        sources: list[asyncio.Task[None]] = []
        live: list[asyncio.Task[None]] = []
        for idx, inp in enumerate(self.inputs):
            if isinstance(inp, FileInput):
                sources.append(asyncio.create_task(self._file_source(idx, inp), name=f"source {inp.name}"))
            else:
                task = asyncio.create_task(self._live_source(idx, inp), name=f"source {inp.name}")
                sources.append(task)
                live.append(task)

        async def stop_live() -> None:
            await self._stop.wait()
            for t in live:
                t.cancel()

        helpers = [asyncio.create_task(self._stats_loop()), asyncio.create_task(stop_live())]
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


def _decoder_snapshot(decoder: DecoderLike | None) -> bytes | None:
    snap = getattr(decoder, "snapshot", None)
    if decoder is None or snap is None or not callable(getattr(decoder, "restore", None)):
        return None
    data = snap()
    return data if isinstance(data, bytes) else None


def _restore_decoder(decoder: DecoderLike | None, state: bytes) -> bool:
    """Restore decoder state in place via ``decoder.restore(bytes)``; False when unsupported."""
    restore = getattr(decoder, "restore", None)
    if decoder is None or restore is None:
        return False
    restore(state)
    return True


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
        "--spool-dir", default=None, metavar="DIR", help="webhook spool (default STATE/spool or $TMPDIR)"
    )
    parser.add_argument("--webhook-format", default="ndjson", choices=("ndjson", "json"), help="webhook body format")
    parser.add_argument(
        "--webhook-drain-timeout-s",
        type=float,
        default=30.0,
        help="on exit, how long to retry undelivered webhook batches (they stay spooled after)",
    )


class _DefaultEngineFactory:
    """The real engine ``geofence.engine.Engine`` with the CLI's ``--rules``, ``--baseline`` and ``--plans``.

    ``--rules`` is TOML (JSON by ``.json`` suffix) for ``RulesConfig``; ``--baseline`` is the
    JSON written by ``geofence learn``; ``--plans`` is JSONL validated against the zone set
    by ``geofence.rules.route.parse_plans``.
    """

    def __init__(self, rules: str | None, baseline: str | None, plans: str | None) -> None:
        self._options: dict[str, Any] = {}
        self._plans_path = plans
        if rules:
            from geofence.rules.config import RulesConfig

            text = Path(rules).read_text(encoding="utf-8")
            is_json = rules.endswith(".json")
            self._options["config"] = (
                RulesConfig.from_mapping(orjson.loads(text)) if is_json else RulesConfig.from_toml(text)
            )
        if baseline:
            from geofence.baseline import Baseline

            self._options["baseline"] = Baseline.from_dict(orjson.loads(Path(baseline).read_bytes()))

    def _kwargs(self, zones: ZoneSet) -> dict[str, Any]:
        kwargs = dict(self._options)
        if self._plans_path:
            from geofence.rules.route import parse_plans

            records: list[tuple[int, Any]] = []
            for n, line in enumerate(Path(self._plans_path).read_bytes().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    records.append((n, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise ConfigError(f"{self._plans_path}:{n}: not a JSON object ({exc}); one plan per line") from None
            kwargs["plans"] = parse_plans(records, zones, source=self._plans_path)
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
    """Map ``--input`` values to runner inputs: files are resumable, everything else is live."""
    out: list[Input] = []
    for spec in specs or ["-"]:
        if spec == "-":
            out.append(LiveInput("-", stdin_chunks))
        elif "://" in spec and not spec.startswith("file://"):
            try:
                from streams import sources  # type: ignore[attr-defined,unused-ignore]
            except ImportError:
                raise ConfigError(f"input {spec!r}: live sources need streams.sources, which is missing") from None
            opener = getattr(sources, "open_source", None)
            if opener is None:
                raise ConfigError(f"input {spec!r}: streams.sources has no open_source(url)")
            out.append(LiveInput(spec, _bind_opener(opener, spec)))
        else:
            path = Path(spec.removeprefix("file://"))
            if not path.is_file():
                raise ConfigError(f"input {spec!r} is not a file; give a readable path, '-' for stdin, or a URL")
            out.append(FileInput(path))
    return out


def _bind_opener(opener: Callable[[str], AsyncIterable[Sequence[bytes]]], url: str) -> Callable[[], Any]:
    return lambda: opener(url)


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
    try:
        from zones.catalogue import default_catalogue_path
        from zones.loader import load_zones

        zones = load_zones(args.zones or [default_catalogue_path()])
        factory = engine_factory or _DefaultEngineFactory(args.rules, args.baseline, args.plans)
        ckpt = load_checkpoint(args.state) if args.state else None
        engine = factory.new(zones) if ckpt is None else factory.restore(ckpt.engine_state, zones)
        inputs = build_inputs(args.input)
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
            )
        )
    except StrictStop as exc:
        print(f"geofence run: --strict: {exc}", file=err)
        return 1
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
