"""Inputs of the embedded runner as chunks of complete lines: files, stdin, TCP, UDP and Kafka.

``--input`` forms
-----------------
=========================================  ========================================================
``PATH``, ``file://PATH``                  a file, plain or gzip (magic bytes); read by the runner
                                           (:func:`file_line_batches`), sorted by event time there
``-``                                      standard input (live)
``tcp://host:port``                        TCP *client*; reconnects with exponential backoff + jitter
``udp://[host]:port``                      UDP *listener* on ``host`` (default 127.0.0.1)
``kafka://host:port/topic[?group=G&offset=earliest|latest]``
                                           aiokafka consumer, one record value = one input line
=========================================  ========================================================

Every live source is an async iterable of ``list[bytes]``: complete lines with
the ``\\n`` (and a ``\\r`` before it) removed, in arrival order. Bytes are never
decoded here, so invalid UTF-8, NUL bytes or garbage reach the decoders, which
dead-letter them; a source only ends (stdin at EOF) or raises for reasons of its
own configuration, never because of what it received.

TCP (client)
    A partial line is kept across reads and completed by the next read. When the
    connection ends, a trailing partial line is passed on as a line of its own
    (the decoder dead-letters it), so no received byte vanishes. Then the source
    reconnects after ``min(cap, base * 2**attempt) * (1 + jitter * U[0, 1))``
    seconds (0.5 s base, 30 s cap, jitter 0.5; the attempt count restarts after a
    connection that delivered data) and logs one ``WARNING`` line on the
    ``streams.sources`` logger for every lost connection, failed attempt and
    reconnect. Lines the server sent while no connection existed are not
    received: TCP has no replay (use Kafka for that).
UDP (listener)
    Binds to 127.0.0.1 unless the URL names another address (``udp://0.0.0.0:5000``
    listens on every interface). One datagram may carry several lines; its last
    line needs no newline. Datagrams that arrive while the queue of
    ``queue_datagrams`` is full are dropped and counted (``dropped``), with a
    warning: UDP has no flow control, and the kernel drops too when the runner
    does not read.
Kafka
    ``group`` (default ``geofence-run``) is the consumer group; ``offset`` (default
    ``earliest``) is where a group without committed offsets starts. Auto-commit
    is off: the runner commits a record's offset only after the lines up to it
    are durable (alerts flushed by every sink, and with ``--state`` written into
    a checkpoint), so a restart with the same group re-reads exactly the records
    after the last durable point: at-least-once. One record is one line, so the
    commit is exact to the line whatever the micro-batches are. The consumer
    outlives the iteration (until ``aclose()``, which the runner calls after its
    last commit): a stop ends the reading before the final checkpoint is written,
    and committing what that checkpoint covers needs the consumer. ``group=``
    (empty) reads without a group: nothing is committed and every start begins at
    ``offset``. A record with an empty (null) value is an empty line, which
    decoders count as skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import random
import stat
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from geofence.errors import ConfigError

__all__ = [
    "DEFAULT_KAFKA_GROUP",
    "KafkaLineSource",
    "LineSplitter",
    "RawLines",
    "SourceUrl",
    "TcpLineSource",
    "UdpLineSource",
    "file_head",
    "file_line_batches",
    "open_binary",
    "open_source",
    "parse_source_url",
    "split_datagram",
    "stdin_chunks",
]

_log = logging.getLogger(__name__)

DEFAULT_KAFKA_GROUP = "geofence-run"
_HEAD_BYTES = 65536
_READ_HINT = 1 << 20
_MAX_LINE_BYTES = 1 << 20


# -- URLs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceUrl:
    """A parsed live ``--input``: scheme (``stdin``, ``tcp``, ``udp``, ``kafka``), address and options."""

    scheme: str
    host: str = ""
    port: int = 0
    topic: str = ""
    group: str | None = None
    offset: str = "earliest"


_FORMS = "'-' (stdin), tcp://host:port, udp://[host]:port or kafka://host:port/topic"


def parse_source_url(url: str) -> SourceUrl:
    """Parse and validate a live ``--input`` URL; raise :class:`ConfigError` naming the fix."""
    if url == "-":
        return SourceUrl("stdin")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("tcp", "udp", "kafka"):
        raise ConfigError(f"input {url!r}: unknown scheme {parts.scheme!r}; use a file path, {_FORMS}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"input {url!r}: the port is not a number in 0..65535") from None
    if port is None:
        raise ConfigError(f"input {url!r} has no port; e.g. {scheme}://127.0.0.1:5000")
    host = parts.hostname or ""
    if scheme == "tcp":
        if not host:
            raise ConfigError(f"input {url!r} has no host to connect to; e.g. tcp://127.0.0.1:5000")
        return SourceUrl("tcp", host, port)
    if scheme == "udp":
        return SourceUrl("udp", host or "127.0.0.1", port)
    topic = parts.path.lstrip("/")
    if not host or not topic or "/" in topic:
        raise ConfigError(f"input {url!r}: write kafka://host:port/topic[?group=G&offset=earliest|latest]")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"group", "offset"})
    if unknown:
        raise ConfigError(f"input {url!r}: unknown option(s) {unknown}; kafka inputs take group= and offset=")
    group = query.get("group", [DEFAULT_KAFKA_GROUP])[-1] or None
    offset = query.get("offset", ["earliest"])[-1]
    if offset not in ("earliest", "latest"):
        raise ConfigError(f"input {url!r}: offset={offset!r} must be 'earliest' or 'latest'")
    return SourceUrl("kafka", host, port, topic=topic, group=group, offset=offset)


def open_source(url: str) -> AsyncIterable[Sequence[bytes]]:
    """The live source named by ``url`` (see the module docstring); nothing is opened before iteration."""
    spec = parse_source_url(url)
    if spec.scheme == "stdin":
        return stdin_chunks()
    if spec.scheme == "tcp":
        return TcpLineSource(spec.host, spec.port, name=url)
    if spec.scheme == "udp":
        return UdpLineSource(spec.host, spec.port, name=url)
    return KafkaLineSource(
        f"{spec.host}:{spec.port}", spec.topic, group_id=spec.group, offset_reset=spec.offset, name=url
    )


# -- line splitting ----------------------------------------------------------------------------


class LineSplitter:
    """Split a byte stream into complete lines, keeping a partial line across reads.

    Parameters
    ----------
    max_line_bytes
        A partial line longer than this is passed on as it is (decoders dead-letter
        it as ``too_long``) instead of growing without bound.
    """

    def __init__(self, max_line_bytes: int = _MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Complete lines in ``data`` (with what was kept before); the unfinished tail is kept."""
        buf = self._rest + data if self._rest else data
        parts = buf.split(b"\n")
        self._rest = parts.pop()
        lines = [p[:-1] if p.endswith(b"\r") else p for p in parts]
        if len(self._rest) > self.max_line_bytes:
            lines.append(self._rest)
            self._rest = b""
        return lines

    def flush(self) -> list[bytes]:
        """The kept partial line, if any, as a last line (end of stream or of a connection)."""
        rest, self._rest = self._rest, b""
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        return [rest] if rest else []


def split_datagram(data: bytes) -> list[bytes]:
    """Lines of one datagram: split on ``\\n``, ``\\r`` before it removed; a final newline is optional."""
    if not data:
        return []
    parts = data.split(b"\n")
    if not parts[-1]:
        parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


# -- files and stdin -----------------------------------------------------------------------------


def open_binary(path: Path) -> tuple[BinaryIO, bool]:
    """Open ``path`` for reading bytes, transparently gunzipping (by magic bytes); returns (file, compressed)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb"), True  # type: ignore[return-value]
    return open(path, "rb"), False


def file_head(path: Path, n_bytes: int = _HEAD_BYTES) -> bytes:
    """The first ``n_bytes`` of a (possibly gzipped) file, for format detection."""
    fh, _ = open_binary(path)
    with fh:
        return fh.read(n_bytes)


@dataclass(slots=True)
class RawLines:
    """Lines ``first_line .. end_line`` (1-based, inclusive) of an input, newline removed."""

    lines: list[bytes]
    first_line: int
    end_line: int


def file_line_batches(path: Path, batch_size: int) -> Generator[RawLines, None, None]:
    """Batches of ``batch_size`` lines of a plain or gzipped file, from its start.

    A last line without a newline is a line too. Lines are bytes; nothing is decoded.
    """
    fh, _ = open_binary(path)
    with fh:
        done = 0
        pending: list[bytes] = []
        while True:
            chunk = fh.readlines(_READ_HINT)
            if not chunk:
                break
            pending.extend(chunk)
            while len(pending) >= batch_size:
                batch, pending = pending[:batch_size], pending[batch_size:]
                yield _raw(batch, done)
                done += len(batch)
        if pending:
            yield _raw(pending, done)


def _raw(raw_lines: list[bytes], done_before: int) -> RawLines:
    return RawLines([x.rstrip(b"\r\n") for x in raw_lines], done_before + 1, done_before + len(raw_lines))


async def stdin_chunks() -> AsyncIterator[list[bytes]]:
    """Lines of standard input as they arrive (a live source: no offsets, ends at EOF).

    A pipe, socket or terminal is read by the event loop; a regular file (``geofence run
    < FILE``), which asyncio cannot watch, is read in a worker thread.
    """
    if stat.S_ISREG(os.fstat(sys.stdin.buffer.fileno()).st_mode):
        async for lines in _regular_stdin():
            yield lines
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    splitter = LineSplitter()
    try:
        while True:
            data = await reader.read(_READ_HINT)
            if not data:
                break
            lines = splitter.feed(data)
            if lines:
                yield lines
        tail = splitter.flush()
        if tail:
            yield tail
    finally:
        transport.close()


async def _regular_stdin() -> AsyncIterator[list[bytes]]:
    splitter = LineSplitter()
    while True:
        data = await asyncio.to_thread(sys.stdin.buffer.read, _READ_HINT)
        if not data:
            break
        lines = splitter.feed(data)
        if lines:
            yield lines
    tail = splitter.flush()
    if tail:
        yield tail


# -- TCP -------------------------------------------------------------------------------------------


def _backoff_s(attempt: int, base_s: float, cap_s: float, jitter: float, rng: random.Random) -> float:
    delay = min(cap_s, base_s * (2.0 ** min(attempt, 30)))
    return delay * (1.0 + jitter * rng.random())


class TcpLineSource:
    """A TCP client that yields lines and reconnects forever (see the module docstring).

    Parameters
    ----------
    host, port
        The server to connect to.
    backoff_base_s, backoff_cap_s, jitter
        Reconnect delay ``min(cap, base * 2**attempt) * (1 + jitter * U[0, 1))``.
    seed
        Seed of the jitter RNG (``None``: from the OS).
    connect_timeout_s
        Give up one connection attempt after this long.
    max_line_bytes
        Longer partial lines are passed on as they are (see :class:`LineSplitter`).
    name
        Name in log lines (default ``tcp://host:port``).

    Attributes
    ----------
    connections
        Connections made so far; ``reconnects`` = connections after the first.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        jitter: float = 0.5,
        seed: int | None = None,
        connect_timeout_s: float = 10.0,
        read_bytes: int = 65536,
        max_line_bytes: int = _MAX_LINE_BYTES,
        name: str | None = None,
    ) -> None:
        if backoff_base_s <= 0 or backoff_cap_s < backoff_base_s or jitter < 0:
            raise ConfigError(
                f"tcp backoff base={backoff_base_s} cap={backoff_cap_s} jitter={jitter}: "
                "need 0 < base <= cap and jitter >= 0"
            )
        self.host = host
        self.port = port
        self.name = name or f"tcp://{host}:{port}"
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.jitter = jitter
        self.connect_timeout_s = connect_timeout_s
        self.read_bytes = read_bytes
        self.max_line_bytes = max_line_bytes
        self.connections = 0
        self._rng = random.Random(seed)

    @property
    def reconnects(self) -> int:
        """Connections made after the first one."""
        return max(0, self.connections - 1)

    def __aiter__(self) -> AsyncIterator[list[bytes]]:
        return self._lines()

    def _delay(self, attempt: int) -> float:
        return _backoff_s(attempt, self.backoff_base_s, self.backoff_cap_s, self.jitter, self._rng)

    async def _lines(self) -> AsyncIterator[list[bytes]]:
        attempt = 0
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), timeout=self.connect_timeout_s
                )
            except (OSError, TimeoutError) as exc:
                delay = self._delay(attempt)
                attempt += 1
                _log.warning(
                    "%s: cannot connect (%s); retrying in %.2f s (attempt %d)",
                    self.name,
                    exc or type(exc).__name__,
                    delay,
                    attempt,
                )
                await asyncio.sleep(delay)
                continue
            self.connections += 1
            if self.connections == 1:
                _log.info("%s: connected", self.name)
            else:
                _log.warning("%s: reconnected (connection %d)", self.name, self.connections)
            splitter = LineSplitter(self.max_line_bytes)
            reason = "closed by the server"
            got_data = False
            try:
                while True:
                    try:
                        data = await reader.read(self.read_bytes)
                    except OSError as exc:
                        reason = f"read failed: {exc}"
                        break
                    if not data:
                        break
                    got_data = True
                    lines = splitter.feed(data)
                    if lines:
                        yield lines
                tail = splitter.flush()  # a line cut by the disconnect: passed on, the decoder dead-letters it
                if tail:
                    yield tail
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            if got_data:
                attempt = 0
            delay = self._delay(attempt)
            attempt += 1
            _log.warning("%s: connection lost (%s); reconnecting in %.2f s", self.name, reason, delay)
            await asyncio.sleep(delay)


# -- UDP ---------------------------------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpLineSource) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.owner._received(data)

    def error_received(self, exc: Exception) -> None:
        _log.warning("%s: socket error %s (ignored)", self.owner.name, exc)


class UdpLineSource:
    """A UDP listener yielding the lines of the datagrams it receives (see the module docstring).

    Parameters
    ----------
    host, port
        Address to bind; ``port=0`` lets the OS choose (see :attr:`port` after :meth:`start`).
    queue_datagrams
        Datagrams buffered while the runner is busy; more are dropped and counted.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, queue_datagrams: int = 10000, name: str | None = None
    ) -> None:
        self.host = host or "127.0.0.1"
        self.port = port
        self.name = name or f"udp://{self.host}:{port}"
        self.dropped = 0
        self.datagrams = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_datagrams)
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Bind the socket (done by the first iteration otherwise); :attr:`port` is then the bound port."""
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot listen on {self.host}:{self.port} ({exc})") from None
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        _log.info("%s: listening on %s:%d", self.name, self.host, self.port)

    def close(self) -> None:
        """Close the socket; idempotent."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, data: bytes) -> None:
        self.datagrams += 1
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _log.warning("%s: %d datagram(s) dropped: the runner is not keeping up", self.name, self.dropped)

    def __aiter__(self) -> AsyncIterator[list[bytes]]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[list[bytes]]:
        await self.start()
        try:
            while True:
                lines = split_datagram(await self._queue.get())
                while not self._queue.empty():
                    lines.extend(split_datagram(self._queue.get_nowait()))
                if lines:
                    yield lines
        finally:
            self.close()


# -- Kafka -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Segment:
    """Records of one partition from one poll: the lines ``first_line + 1 ..`` (counted from the start)."""

    first_line: int
    tp: Any
    offsets: list[int]


class KafkaLineSource:
    """An aiokafka consumer yielding one line per record value (see the module docstring).

    The consumer is started by the first iteration and stopped by :meth:`aclose`, not
    when an iteration ends: the runner stops reading (a signal) before it writes its
    final checkpoint and commits what that checkpoint covers, which needs the
    consumer and its group membership. Call :meth:`aclose` when done (the runner does).

    Parameters
    ----------
    bootstrap
        ``host:port`` of a broker.
    topic
        The topic to read (all its partitions).
    group_id
        Consumer group; ``None`` reads without a group and commits nothing.
    offset_reset
        ``earliest`` or ``latest``: where to start without a committed offset.
    consumer_options
        Extra ``AIOKafkaConsumer`` keyword arguments (e.g. shorter session timeouts in tests).
    max_records
        Records fetched per poll.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        group_id: str | None = DEFAULT_KAFKA_GROUP,
        offset_reset: str = "earliest",
        consumer_options: dict[str, Any] | None = None,
        max_records: int = 10000,
        name: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.offset_reset = offset_reset
        self.consumer_options = dict(consumer_options or {})
        self.max_records = max_records
        self.name = name or f"kafka://{bootstrap}/{topic}"
        self.commits = 0
        self._consumer: Any = None
        self._closed = False
        self._yielded = 0
        self._pending: deque[_Segment] = deque()
        self._durable: dict[Any, int] = {}  # partition -> offset after its last durable record
        self._committed: dict[Any, int] = {}

    def __aiter__(self) -> AsyncIterator[list[bytes]]:
        return self._lines()

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        if self._closed:
            raise RuntimeError(f"{self.name}: the source was closed; open a new one")
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset=self.offset_reset,
                **self.consumer_options,
            )
            await consumer.start()
            self._consumer = consumer
            _log.info("%s: consuming (group %s, %s)", self.name, self.group_id or "none", self.offset_reset)
        return self._consumer

    async def _lines(self) -> AsyncIterator[list[bytes]]:
        consumer = await self._start()
        while True:
            polled = await consumer.getmany(timeout_ms=200, max_records=self.max_records)
            lines: list[bytes] = []
            for tp, records in polled.items():
                if not records:
                    continue
                self._pending.append(_Segment(self._yielded + len(lines), tp, [rec.offset for rec in records]))
                for rec in records:
                    value = rec.value
                    lines.append(b"" if value is None else bytes(value).rstrip(b"\r\n"))
            if lines:
                self._yielded += len(lines)
                yield lines

    async def commit_lines(self, lines_done: int) -> None:
        """Commit the offset after each partition's last record among the first ``lines_done`` lines (runner hook).

        One record is one line, so the commit is exact to the line, whatever the
        runner's micro-batches are. Errors are logged, not raised: a failed commit
        means only that a restart re-reads more.
        """
        while self._pending:
            seg = self._pending[0]
            covered = min(len(seg.offsets), lines_done - seg.first_line)
            if covered <= 0:
                break
            self._durable[seg.tp] = seg.offsets[covered - 1] + 1
            if covered < len(seg.offsets):
                break
            self._pending.popleft()
        # Every durable offset not yet committed, so a failed commit is retried by the next call.
        offsets = {tp: off for tp, off in self._durable.items() if self._committed.get(tp, -1) < off}
        consumer = self._consumer
        if not offsets or self.group_id is None:
            return
        if consumer is None:
            _log.warning("%s: offsets %s not committed: the consumer is closed", self.name, offsets)
            return
        try:
            await consumer.commit(offsets)
        except Exception as exc:
            _log.warning("%s: offset commit failed (%s); a restart re-reads those records", self.name, exc)
            return
        self._committed.update(offsets)
        self.commits += 1

    async def aclose(self) -> None:
        """Stop the consumer (leave the group); idempotent. Commit before, not after."""
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
