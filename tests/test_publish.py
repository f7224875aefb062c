"""The gateway without a broker: partition split, routing keys, record order, end-of-stream, input chunking."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.deadletter import DeadLetter
from geofence.decode.accounting import Counts, DecodeResult
from geofence.errors import ConfigError
from geofence.positions import PositionBatch, StaticReport, SubjectKind
from streams import wire
from streams.faust_app import TopicNames
from streams.partition import SubjectPartitioner, partition_for_subject
from streams.publish import PublishConfig, Publisher, SubjectRouter, decoded_inputs, split_by_partition


class FakeProducer:
    """aiokafka's producer API, recording every send."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.sent: list[tuple[str, bytes | None, bytes, int | None]] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    async def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None) -> Any:
        self.sent.append((topic, key, value, partition))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def _batch(
    ids: Sequence[str], kinds: Sequence[int] | None = None, carriers: Sequence[str] | None = None
) -> PositionBatch:
    n = len(ids)
    return PositionBatch.from_columns(
        subject_id=list(ids),
        ts_s=1.78e9 + np.arange(n, dtype=float),
        lon_deg=np.full(n, 110.0),
        lat_deg=np.full(n, 30.0),
        kind=kinds,
        carrier_id=carriers,
        line=np.arange(1, n + 1),
    )


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(st.sampled_from([str(412_100_000 + i) for i in range(30)]), max_size=200),
    partitions=st.integers(1, 9),
    chunk=st.integers(1, 50),
)
def test_split_keeps_every_row_once_in_order_on_its_subjects_partition(
    ids: list[str], partitions: int, chunk: int
) -> None:
    batch = _batch(ids)
    parts = split_by_partition(batch, SubjectPartitioner(partitions), chunk)
    seen: list[int] = []
    for p, key, sub in parts:
        assert 0 < len(sub) <= chunk
        assert key == sub.subject_id[0] and partition_for_subject(key, partitions) == p
        assert all(partition_for_subject(s, partitions) == p for s in sub.subject_id)
        assert list(sub.line) == sorted(sub.line)  # input order within a partition
        seen.extend(int(x) for x in sub.line)
    assert sorted(seen) == list(range(1, len(ids) + 1))


_CONTAINERS = ["OOLU5698210", "CSQU3054383", "MSKU4777165"]
_VESSELS = [str(412_100_000 + 37 * i) for i in range(12)]


def _reference_keys(rows: list[tuple[str, str | None]]) -> list[str]:
    """The routing rule written out: a vessel by its id; a container by its carrier, the last declared when blank."""
    last: dict[str, str] = {}
    out = []
    for sid, carrier in rows:
        if carrier is None:
            out.append(sid)
        elif carrier:
            last[sid] = carrier
            out.append(carrier)
        else:
            out.append(last.get(sid, sid))
    return out


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(_VESSELS), st.none()),
            st.tuples(st.sampled_from(_CONTAINERS), st.sampled_from(["", "", *_VESSELS[:4]])),
        ),
        max_size=120,
    ),
    cut=st.integers(0, 120),
    partitions=st.integers(1, 9),
    chunk=st.integers(1, 40),
)
def test_containers_ride_on_their_declared_carriers_partition(
    rows: list[tuple[str, str | None]], cut: int, partitions: int, chunk: int
) -> None:
    """Across the batches of one router; every record's key maps to the record's partition."""
    ids = [sid for sid, _c in rows]
    kinds = [SubjectKind.VESSEL if c is None else SubjectKind.CONTAINER for _s, c in rows]
    carriers = [c or "" for _s, c in rows]
    batch = _batch(ids, kinds, carriers)
    router = SubjectRouter(SubjectPartitioner(partitions))
    cut = min(cut, len(rows))
    parts = split_by_partition(batch.take(np.arange(cut)), router, chunk)
    parts += split_by_partition(batch.take(np.arange(cut, len(rows))), router, chunk)
    want = [partition_for_subject(k, partitions) for k in _reference_keys(rows)]
    got: dict[int, int] = {}
    for p, key, sub in parts:
        assert partition_for_subject(key, partitions) == p
        assert list(sub.line) == sorted(sub.line)
        got.update((int(x), p) for x in sub.line)
    assert [got[i + 1] for i in range(len(rows))] == want


def test_a_blank_carrier_follows_the_last_declared_one_and_a_new_carrier_moves_the_container() -> None:
    part = SubjectPartitioner(16)
    a, b = "413101221", "414101258"
    assert part(a) != part(b) and part("OOLU5698210") not in (part(a), part(b))
    router = SubjectRouter(part)
    first = _batch(["OOLU5698210"] * 3, kinds=[SubjectKind.CONTAINER] * 3, carriers=["", a, ""])
    second = _batch(["OOLU5698210"] * 3, kinds=[SubjectKind.CONTAINER] * 3, carriers=["", b, ""])
    got = [(p, k, list(sub.line)) for p, k, sub in split_by_partition(first, router, 99)]
    assert sorted(got) == sorted([(part("OOLU5698210"), "OOLU5698210", [1]), (part(a), a, [2, 3])])
    got = [(p, k, list(sub.line)) for p, k, sub in split_by_partition(second, router, 99)]
    assert sorted(got) == sorted([(part(a), a, [1]), (part(b), b, [2, 3])])
    assert router("OOLU5698210") == part(b) and router.key_of("413101221") == a  # statics follow too


async def test_publisher_sends_statics_first_then_batches_then_end_of_stream() -> None:
    prod = FakeProducer(4)
    cfg = PublishConfig(broker="kafka://127.0.0.1:1", topics=TopicNames(positions="pos", deadletter="dl"))
    ids = [str(412_100_000 + i) for i in range(40)]
    async with Publisher(cfg, producer=prod) as pub:
        await pub.send_statics([StaticReport(s, None, ship_type=70) for s in ids[:5]])
        await pub.send_positions(_batch(ids))
        await pub.send_dead([DeadLetter("in.nmea", 7, "checksum", "bad", "!AIVDM")])
        await pub.end_of_stream()
    assert prod.started and prod.stopped
    kinds = [(t, p, wire.record_type(v) if t == "pos" else None) for t, _k, v, p in prod.sent]
    rank = {wire.STATICS: 0, wire.POSITIONS: 1, wire.END_OF_STREAM: 2}
    for p in range(4):  # per partition: statics, then positions, then the end marker
        seq = [rank[k] for t, q, k in kinds if t == "pos" and q == p and k is not None]
        assert seq == sorted(seq) and seq[-1] == 2 and 1 in seq
    eos = [wire.decode(v) for t, _k, v, _p in prod.sent if t == "pos" and wire.record_type(v) == wire.END_OF_STREAM]
    assert sorted(e.partition for e in eos if isinstance(e, wire.EndOfStream)) == [0, 1, 2, 3]
    assert {e.final_ts_s for e in eos if isinstance(e, wire.EndOfStream)} == {1.78e9 + 39}
    assert [t for t, *_ in prod.sent].count("dl") == 1
    assert pub.stats.positions == 40 and pub.stats.statics == 5 and pub.stats.dead == 1


async def test_publisher_keys_container_records_by_the_carrier_across_batches() -> None:
    prod = FakeProducer(16)
    cfg = PublishConfig(broker="kafka://127.0.0.1:1", topics=TopicNames(positions="pos", deadletter="dl"))
    carrier = "413101221"
    async with Publisher(cfg, producer=prod) as pub:
        await pub.send_positions(_batch(["OOLU5698210"], kinds=[SubjectKind.CONTAINER], carriers=[carrier]))
        await pub.send_positions(_batch(["OOLU5698210"], kinds=[SubjectKind.CONTAINER], carriers=[""]))
    sent = [(k, p) for t, k, v, p in prod.sent if t == "pos" and wire.record_type(v) == wire.POSITIONS]
    assert sent == [(carrier.encode(), partition_for_subject(carrier, 16))] * 2


class RecordingDecoder:
    """Decoder stand-in recording the calls it gets."""

    def __init__(self, name: str, calls: list[tuple[str, int, int]]) -> None:
        self.name = name
        self.calls = calls

    def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
        self.calls.append((self.name, first_line, len(lines)))
        assert all(not ln.endswith((b"\n", b"\r")) for ln in lines)
        return DecodeResult(PositionBatch.empty(), counts=Counts(input_lines=len(lines)))

    def close(self) -> DecodeResult:
        self.calls.append((self.name, -1, 0))
        return DecodeResult(PositionBatch.empty())


async def test_inputs_are_cut_like_the_embedded_runner(tmp_path: Path) -> None:
    plain = tmp_path / "a.nmea"
    plain.write_bytes(b"".join(b"line %d\r\n" % i for i in range(10)))
    packed = tmp_path / "b.nmea.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(b"".join(b"line %d\n" % i for i in range(5)))
    calls: list[tuple[str, int, int]] = []
    heads: list[bytes] = []

    def factory(name: str, head: bytes, live: bool) -> RecordingDecoder:
        assert not live
        heads.append(head)
        return RecordingDecoder(Path(name).name, calls)

    results = [r async for r in decoded_inputs([str(plain), str(packed)], factory, lines_per_chunk=4)]
    assert calls == [
        ("a.nmea", 1, 4),
        ("a.nmea", 5, 4),
        ("a.nmea", 9, 2),
        ("a.nmea", -1, 0),
        ("b.nmea.gz", 1, 4),
        ("b.nmea.gz", 5, 1),
        ("b.nmea.gz", -1, 0),
    ]
    assert heads[1].startswith(b"line 0\n")  # the format is detected on decompressed bytes
    assert sum(r.counts.input_lines for r in results) == 15


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="partitions"):
        PublishConfig(broker="kafka://h:1", partitions=0)
    with pytest.raises(ConfigError, match="rate"):
        PublishConfig(broker="kafka://h:1", rate_positions_s=0)
