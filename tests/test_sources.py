"""Live sources: TCP client (reconnect, partial lines), UDP listener, Kafka consumer, URL parsing.

Everything runs on 127.0.0.1. The Kafka tests start a real Tansu broker (``streams.tansu``);
they skip locally when its binary is missing and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
from collections.abc import AsyncIterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.errors import ConfigError
from streams.sources import (
    KafkaLineSource,
    LineSplitter,
    TcpLineSource,
    UdpLineSource,
    open_source,
    parse_source_url,
    split_datagram,
)
from tests.conftest import need

HOST = "127.0.0.1"


async def _collect(source: AsyncIterable[Sequence[bytes]], n: int, timeout_s: float = 20.0) -> list[bytes]:
    """The first ``n`` lines of ``source`` (fails after ``timeout_s``)."""
    got: list[bytes] = []

    async def take() -> None:
        async for chunk in source:
            got.extend(chunk)
            if len(got) >= n:
                return

    try:
        await asyncio.wait_for(take(), timeout=timeout_s)
    except TimeoutError:
        raise AssertionError(f"got {len(got)} of {n} lines in {timeout_s} s: {got[-5:]}") from None
    return got


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- line splitting ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_splitter_gives_the_same_lines_however_the_stream_is_cut(data: bytes, cuts: list[int]) -> None:
    """Bytes of any kind (invalid UTF-8, NUL, CR) survive; a partial line waits for its end."""
    splitter = LineSplitter()
    got: list[bytes] = []
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for a, b in itertools.pairwise(bounds):
        got.extend(splitter.feed(data[a:b]))
    got.extend(splitter.flush())
    want = [p[:-1] if p.endswith(b"\r") else p for p in data.split(b"\n")]
    if want and want[-1] == b"":
        want.pop()
    assert got == want


def test_splitter_passes_an_endless_line_on_instead_of_growing() -> None:
    splitter = LineSplitter(max_line_bytes=100)
    out = splitter.feed(b"x" * 70) + splitter.feed(b"y" * 70) + splitter.feed(b"z\nok\n")
    assert out == [b"x" * 70 + b"y" * 70, b"z", b"ok"]


def test_datagram_lines() -> None:
    assert split_datagram(b"a\r\nb\nc") == [b"a", b"b", b"c"]
    assert split_datagram(b"a\n\nb\n") == [b"a", b"", b"b"]
    assert split_datagram(b"") == []


# -- URLs -----------------------------------------------------------------------------------------


def test_url_forms_and_defaults() -> None:
    assert parse_source_url("-").scheme == "stdin"
    tcp = parse_source_url("tcp://10.1.2.3:5000")
    assert (tcp.scheme, tcp.host, tcp.port) == ("tcp", "10.1.2.3", 5000)
    udp = parse_source_url("udp://:5001")
    assert (udp.host, udp.port) == ("127.0.0.1", 5001)  # a listener binds to loopback unless told otherwise
    assert parse_source_url("udp://0.0.0.0:5001").host == "0.0.0.0"
    k = parse_source_url("kafka://127.0.0.1:9092/ais.raw")
    assert (k.topic, k.group, k.offset) == ("ais.raw", "geofence-run", "earliest")
    k2 = parse_source_url("kafka://127.0.0.1:9092/ais.raw?group=&offset=latest")
    assert (k2.group, k2.offset) == (None, "latest")
    assert isinstance(open_source("udp://:0"), UdpLineSource)
    assert isinstance(open_source("tcp://127.0.0.1:1"), TcpLineSource)
    assert isinstance(open_source("kafka://127.0.0.1:9092/t"), KafkaLineSource)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x:1", "unknown scheme"),
        ("tcp://127.0.0.1", "no port"),
        ("tcp://:5000", "no host"),
        ("tcp://h:99999", "port"),
        ("kafka://h:1", "kafka://host:port/topic"),
        ("kafka://h:1/t?grp=x", "unknown option"),
        ("kafka://h:1/t?offset=middle", "earliest"),
    ],
)
def test_bad_urls_are_refused_with_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_source_url(url)


# -- TCP ------------------------------------------------------------------------------------------


class LineServer:
    """A TCP server on 127.0.0.1 that writes ``chunks`` (with pauses) to each client, then hangs up."""

    def __init__(self, port: int, chunks: list[bytes], pause_s: float = 0.0) -> None:
        self.port = port
        self.chunks = chunks
        self.pause_s = pause_s
        self.clients = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        for chunk in self.chunks:
            writer.write(chunk)
            await writer.drain()
            if self.pause_s:
                await asyncio.sleep(self.pause_s)
        writer.close()
        await writer.wait_closed()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def test_tcp_reconnects_after_the_server_restarts_and_loses_nothing_sent_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streams.sources")
    port = _free_port()
    first = [f"a{i}\n".encode() for i in range(50)] + [b"split-", b"across-reads\n", b"cut-by-hangup"]
    second = [f"b{i}\n".encode() for i in range(200)]
    server = LineServer(port, first, pause_s=0.01)
    await server.start()
    source = TcpLineSource(HOST, port, backoff_base_s=0.05, backoff_cap_s=0.2, seed=1)
    got: list[bytes] = []

    async def consume() -> None:
        async for chunk in source:
            got.extend(chunk)
            if b"cut-by-hangup" in chunk:
                await server.stop()  # the server goes away; the client must retry until it is back

    task = asyncio.create_task(consume())
    try:
        while b"cut-by-hangup" not in got:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # several refused attempts
        server2 = LineServer(port, second)
        await server2.start()
        deadline = asyncio.get_running_loop().time() + 10
        while len(got) < 52 + 200 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()
        await server2.stop()
    a_lines = [c.rstrip(b"\n") for c in first[:50]]
    assert got[:52] == [*a_lines, b"split-across-reads", b"cut-by-hangup"]
    assert got[52:] == [c.rstrip(b"\n") for c in second]  # everything the restarted server sent
    assert source.connections >= 2 and server2.clients == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("connection lost" in m and "reconnecting in" in m for m in messages)
    assert any("cannot connect" in m and "retrying in" in m for m in messages)
    assert any("reconnected" in m for m in messages)


async def test_tcp_garbage_never_breaks_the_source() -> None:
    """Random bytes, invalid UTF-8, NULs and CRs all come through as lines, in order, byte for byte."""
    rng = random.Random(5)
    print("seed=5")
    port = _free_port()
    blob = bytes(rng.randrange(256) for _ in range(20000)) + b"\n" + b"L" * 3000 + b"\n!AIVDM,tail\n"
    server = LineServer(port, [blob[i : i + 777] for i in range(0, len(blob), 777)])
    await server.start()
    try:
        source = TcpLineSource(HOST, port, backoff_base_s=0.05, max_line_bytes=4096, seed=1)
        want_tail = b"!AIVDM,tail"
        got: list[bytes] = []

        async def consume() -> None:
            async for chunk in source:
                got.extend(chunk)
                if want_tail in chunk:
                    return

        await asyncio.wait_for(consume(), timeout=10)
    finally:
        await server.stop()
    assert got[-1] == want_tail
    assert b"\n".join(got).replace(b"\r", b"") == blob.rstrip(b"\n").replace(b"\r", b"")


def test_tcp_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    src = TcpLineSource(HOST, 1, backoff_base_s=0.5, backoff_cap_s=30.0, jitter=0.5, seed=3)
    delays = [src._delay(k) for k in range(10)]
    for k, d in enumerate(delays):
        base = min(30.0, 0.5 * 2**k)
        assert base <= d < base * 1.5
    assert len({round(d / min(30.0, 0.5 * 2**k), 6) for k, d in enumerate(delays)}) > 5  # jittered
    with pytest.raises(ConfigError, match="backoff"):
        TcpLineSource(HOST, 1, backoff_base_s=0)


# -- UDP ------------------------------------------------------------------------------------------


async def test_udp_listener_splits_datagrams_into_lines() -> None:
    source = open_source("udp://:0")
    assert isinstance(source, UdpLineSource)
    await source.start()
    assert source.host == "127.0.0.1" and source.port > 0
    datagrams = [b"!AIVDM,one\n!AIVDM,two\n", b"no-newline", b"crlf\r\n\xff\xfe\x00bad\n", b""]
    want = [b"!AIVDM,one", b"!AIVDM,two", b"no-newline", b"crlf", b"\xff\xfe\x00bad"]
    for k in range(30):
        datagrams.append(b"".join(f"burst{k}-{j}\n".encode() for j in range(5)))
        want.extend(f"burst{k}-{j}".encode() for j in range(5))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for d in datagrams:
            tx.sendto(d, (HOST, source.port))
    got = await _collect(source, len(want), timeout_s=10)
    assert got == want
    assert source.dropped == 0


async def test_udp_drops_are_counted_when_the_runner_does_not_read(caplog: pytest.LogCaptureFixture) -> None:
    source = UdpLineSource(port=0, queue_datagrams=3)
    await source.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for k in range(10):
            tx.sendto(f"line{k}\n".encode(), (HOST, source.port))
    for _ in range(100):
        if source.datagrams == 10:
            break
        await asyncio.sleep(0.01)
    got = await _collect(source, 3, timeout_s=5)
    assert got == [b"line0", b"line1", b"line2"]
    assert source.dropped == 7
    assert any("dropped" in r.getMessage() for r in caplog.records)
    source.close()


# -- Kafka (Tansu) ---------------------------------------------------------------------------------


def _broker() -> object:
    try:
        from streams.tansu import TansuBroker, tansu_binary

        tansu_binary()
    except Exception as exc:
        need(False, f"tansu broker unavailable: {exc}")
    return TansuBroker()


async def _produce(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for k, v in enumerate(values):
            await producer.send(topic, value=v, key=f"subject{k % 7}".encode())
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.kafka
async def test_kafka_records_become_lines_and_committed_offsets_follow_the_runner() -> None:
    with _broker() as broker:  # type: ignore[attr-defined]
        bootstrap = broker.bootstrap
        values: list[bytes | None] = [f"!AIVDM,line{k}\r\n".encode() for k in range(300)]
        values[17] = None  # a null value is an empty line
        values[40] = b"\xff\xfebinary"
        await _produce(bootstrap, "ais.raw", values)
        want = sorted(b"" if v is None else v.rstrip(b"\r\n") for v in values)

        # Without a group: everything from the earliest offset, nothing committed.
        plain = open_source(f"kafka://{bootstrap}/ais.raw?group=")
        assert isinstance(plain, KafkaLineSource) and plain.group_id is None
        assert sorted(await _collect(plain, 300)) == want
        await plain.aclose()

        # With a group: the runner's hook commits exactly the lines it declares durable.
        grouped = KafkaLineSource(
            bootstrap,
            "ais.raw",
            group_id="geofence-test",
            consumer_options={"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "rebalance_timeout_ms": 2000},
        )
        got: list[bytes] = []
        async for chunk in grouped:
            got.extend(chunk)
            if len(got) >= 300:
                break
        # After the iteration ended, as the runner's final checkpoint does: the consumer lives until aclose().
        await asyncio.sleep(0.05)
        # Exact to the line: the first 150 lines are 150 records, a prefix of each partition's records.
        await grouped.commit_lines(150)
        assert await _committed_total(bootstrap, "geofence-test", "ais.raw") == 150
        await grouped.commit_lines(len(got))
        await grouped.commit_lines(len(got))  # nothing new: no third commit
        await grouped.aclose()
        assert sorted(got) == want and grouped.commits == 2
        assert await _committed_total(bootstrap, "geofence-test", "ais.raw") == 300


async def _committed_total(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offsets (each partition's next record) summed over the topic's partitions."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    check = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        parts = check.partitions_for_topic(topic) or set()
        if not parts:
            await check._client.force_metadata_update()
            parts = check.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        check.assign(tps)
        return sum([await check.committed(tp) or 0 for tp in tps])
    finally:
        await check.stop()


@pytest.mark.kafka
@pytest.mark.parametrize("checkpoint_every_s", [0.05, 3600.0], ids=["periodic", "only-at-stop"])
async def test_kafka_input_through_the_runner_with_state_commits_what_the_checkpoint_covers(
    tmp_path_factory: pytest.TempPathFactory, checkpoint_every_s: float
) -> None:
    """A one-partition topic read by the runner: the same alert lines as the file, offsets committed at checkpoints.

    Regression (CI: ``None == 1871``): the consumer was stopped when the stop ended the reading, before the
    final checkpoint, so what only that checkpoint covered was never committed. ``only-at-stop`` makes the
    final checkpoint the only one; with ``periodic`` a commit could also be lost when a poll's records
    spanned several micro-batches (commits were per poll, not per line).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from streams.checkpoint import load_checkpoint
    from streams.runner import FileInput, LiveInput, Runner, run
    from streams.sinks import JsonlSink
    from tests.fakes import FakeEngine, fake_decoder_factory, read_triples, write_track_jsonl

    d = tmp_path_factory.mktemp("kafka-run")
    track = d / "track.jsonl"
    n = write_track_jsonl(track, subjects=20, steps=100, seed=4)
    lines = track.read_bytes().split(b"\n")[:-1]
    await run([FileInput(track)], fake_decoder_factory, FakeEngine(), [JsonlSink(d / "ref.jsonl")], stats_every_s=0)
    with _broker() as broker:  # type: ignore[attr-defined]
        bootstrap = broker.bootstrap
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("feed", num_partitions=1, replication_factor=1)])
        await admin.close()
        await _produce(bootstrap, "feed", list(lines))
        source = KafkaLineSource(
            bootstrap,
            "feed",
            group_id="runner",
            consumer_options={"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "rebalance_timeout_ms": 2000},
        )
        state = d / "state"
        runner = Runner(
            [LiveInput(f"kafka://{bootstrap}/feed", lambda: source)],
            fake_decoder_factory,
            FakeEngine(),
            [JsonlSink(d / "live.jsonl")],
            batch_size=128,
            state_dir=state,
            checkpoint_every_s=checkpoint_every_s,
            stats_every_s=0,
        )

        async def stop_when_done() -> None:  # a live source never ends: stop like SIGTERM once all is through
            while runner.lines_delivered < n:
                await asyncio.sleep(0.02)
            runner.request_stop()

        stopper = asyncio.create_task(stop_when_done())
        result = await asyncio.wait_for(runner.run(), timeout=60)
        await stopper
        ck = load_checkpoint(state)
        assert ck is not None and ck.inputs[0].lines == n == result.counts.input_lines
        if checkpoint_every_s > 60:  # the regression's path: the one checkpoint is written after reading stopped
            assert result.checkpoints_written == 1
        assert await _committed_total(bootstrap, "runner", "feed") == n  # the final checkpoint's lines, exactly
    live, ref = read_triples(d / "live.jsonl"), read_triples(d / "ref.jsonl")
    assert live and set(live) <= set(ref)  # stopped before the end: no end-of-input timers, otherwise equal
    assert len(set(ref) - set(live)) <= sum(1 for t in ref if t[1] == "closed")
