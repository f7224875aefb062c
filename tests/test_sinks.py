"""Alert sinks: URL forms, JSONL torn-line repair, the SQLite store, stdout and Kafka."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import orjson
import pytest

from geofence.alerts import AlertType, Status
from geofence.deadletter import DeadLetter
from geofence.errors import ConfigError
from streams.sinks import (
    DeadLetterJsonlSink,
    JsonlSink,
    KafkaSink,
    SqliteSink,
    StdoutSink,
    WebhookSink,
    default_spool_dir,
    open_sink,
)
from tests.fakes import make_alert

_alert = make_alert


def test_open_sink_url_forms(tmp_path: Path) -> None:
    assert isinstance(open_sink("-"), StdoutSink)
    assert isinstance(open_sink("stdout"), StdoutSink)
    j = open_sink(str(tmp_path / "a.jsonl"))
    assert isinstance(j, JsonlSink) and j.path == tmp_path / "a.jsonl"
    assert isinstance(open_sink(f"file://{tmp_path}/b.jsonl"), JsonlSink)
    s = open_sink(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(s, SqliteSink) and s.path == tmp_path / "a.db"
    assert open_sink("sqlite:///rel.db").path == Path("rel.db")  # type: ignore[attr-defined]
    k = open_sink("kafka://127.0.0.1:9092/geofence.alerts")
    assert isinstance(k, KafkaSink) and (k.bootstrap, k.topic) == ("127.0.0.1:9092", "geofence.alerts")
    w = open_sink("http://127.0.0.1:8080/hook", state_dir=tmp_path)
    assert isinstance(w, WebhookSink) and w.spool_dir == default_spool_dir("http://127.0.0.1:8080/hook", tmp_path)
    assert w.spool_dir.is_relative_to(tmp_path)
    for bad in ("kafka://host:1", "sqlite://", "ftp://x/y"):
        with pytest.raises(ConfigError):
            open_sink(bad)


async def test_jsonl_sink_appends_and_repairs_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first = _alert(Status.OPEN, 100.0)
    path.write_bytes(first.to_json() + b"\n" + b'{"alert_id": "tor')  # killed mid-write
    sink = JsonlSink(path)
    await sink.start()
    await sink.write([_alert(Status.CLOSED, 200.0)])
    await sink.flush()
    await sink.close()
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [x["status"] for x in lines] == ["open", "closed"]
    assert lines[0]["lon"] == 114.123457  # contract rounding


async def test_dead_letter_sink_writes_the_record_fields(tmp_path: Path) -> None:
    sink = DeadLetterJsonlSink(tmp_path / "d.jsonl")
    await sink.start()
    await sink.write([DeadLetter("in.nmea", 7, "checksum", "bad *5A", "!AIVDM,...")])
    await sink.close()
    rec = orjson.loads((tmp_path / "d.jsonl").read_bytes())
    assert rec == {"source": "in.nmea", "line": 7, "reason": "checksum", "detail": "bad *5A", "raw": "!AIVDM,..."}


async def test_stdout_sink_writes_json_lines() -> None:
    buf = io.BytesIO()
    sink = StdoutSink(buf)
    await sink.start()
    await sink.write([_alert(Status.OPEN, 100.0), _alert(Status.CLOSED, 160.5)])
    await sink.close()
    assert [orjson.loads(x)["ts"] for x in buf.getvalue().splitlines()] == [
        "1970-01-01T00:01:40Z",
        "1970-01-01T00:02:40.500Z",
    ]


async def test_sqlite_store_is_idempotent_indexed_and_lists_open_alerts(tmp_path: Path) -> None:
    db_path = tmp_path / "a.db"
    a_open, a_upd = _alert(Status.OPEN, 100.0), _alert(Status.UPDATE, 150.0)
    b_open = _alert(Status.OPEN, 120.0, subject="413000002", start=120.0)
    b_closed = _alert(Status.CLOSED, 300.0, subject="413000002", start=120.0)
    event = _alert(Status.EVENT, 90.0, type_=AlertType.ZONE_ENTER, start=90.0)
    for _ in range(2):  # the second pass is a redelivery: no new rows
        sink = SqliteSink(db_path)
        await sink.start()
        await sink.write([event, a_open, b_open, a_upd])
        await sink.flush()
        await sink.write([b_closed])
        await sink.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 5
        open_rows = db.execute("SELECT alert_id, status, ts, ts_s FROM open_alerts").fetchall()
        assert open_rows == [(a_upd.alert_id, "update", "1970-01-01T00:02:30Z", 150.0)]
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"alerts_subject", "alerts_zone", "alerts_type", "alerts_time"} <= indexes
        plan = " ".join(str(r) for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM alerts WHERE subject_id = 'x'"))
        assert "alerts_subject" in plan
        details = db.execute("SELECT details FROM alerts WHERE status = 'update'").fetchone()[0]
        assert orjson.loads(details) == {"dwell_s": 50.0}


class _FakeProducer:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def send(self, topic: str, value: bytes, key: bytes) -> object:
        import asyncio

        self.records.append((topic, key, value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def stop(self) -> None:
        self.stopped = True


async def test_kafka_sink_keys_by_subject_and_sends_the_alert_line() -> None:
    prod = _FakeProducer()
    sink = KafkaSink("127.0.0.1:1", "alerts", producer=prod)
    await sink.start()
    a = _alert(Status.OPEN, 100.0)
    await sink.write([a])
    await sink.close()
    assert prod.records == [("alerts", b"413000001", a.to_json())] and prod.stopped


@pytest.mark.kafka
async def test_kafka_sink_against_tansu() -> None:
    from tests.conftest import need

    try:
        from streams.tansu import TansuBroker, tansu_binary

        tansu_binary()
    except Exception as exc:
        need(False, f"tansu broker unavailable: {exc}")
        return
    from aiokafka import AIOKafkaConsumer

    with TansuBroker() as broker:
        bootstrap = broker.url.removeprefix("kafka://")
        sink = open_sink(f"kafka://{bootstrap}/geofence.alerts")
        alerts = [_alert(Status.OPEN, 100.0), _alert(Status.CLOSED, 200.0, subject="413000009")]
        await sink.start()
        await sink.write(alerts)
        await sink.close()
        consumer = AIOKafkaConsumer("geofence.alerts", bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            got: list[tuple[bytes | None, bytes | None]] = []
            import asyncio

            deadline = asyncio.get_running_loop().time() + 20
            while len(got) < 2 and asyncio.get_running_loop().time() < deadline:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend((r.key, r.value) for r in recs)
        finally:
            await consumer.stop()
    assert sorted(got) == sorted((a.subject_id.encode(), a.to_json()) for a in alerts)


async def test_console_sink_prints_one_readable_line_per_alert() -> None:
    from streams.sinks import ConsoleSink

    assert isinstance(open_sink("console"), ConsoleSink)
    buf = io.StringIO()
    sink = ConsoleSink(buf)
    await sink.write([_alert(Status.OPEN, 100.0), _alert(Status.CLOSED, 200.0, subject="413000002")])
    await sink.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1970-01-01T00:01:40Z  OPEN") and "413000001" in lines[0] and "@ z1" in lines[0]
    assert "dwell_s=100.0" in lines[1]


# -- every sink at once, through geofence run ----------------------------------------------------------


@pytest.mark.kafka
async def test_every_sink_at_once_through_geofence_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    """stdout, JSONL, SQLite, Kafka (Tansu) and a webhook in one ``geofence run``: the same alert lines in each."""
    import asyncio
    import sys

    from aiohttp import web

    from tests.conftest import need
    from tests.fakes import read_triples, sim_world

    try:
        from streams.tansu import TansuBroker, tansu_binary

        tansu_binary()
    except Exception as exc:
        need(False, f"tansu broker unavailable: {exc}")
        return
    from aiokafka import AIOKafkaConsumer

    d = tmp_path_factory.mktemp("all-sinks")
    world = sim_world(d)
    geofence = str(Path(sys.executable).parent / "geofence")
    base = [geofence, "run", "--zones", str(world["zones"]), "--input", str(world["nmea"]), "--stats-every-s", "0"]
    ref = await asyncio.create_subprocess_exec(*base, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    ref_out, ref_err = await asyncio.wait_for(ref.communicate(), timeout=120)
    assert ref.returncode == 0, ref_err.decode()
    expected = sorted((o["alert_id"], o["status"], o["ts"]) for o in map(orjson.loads, ref_out.splitlines()))
    assert len(expected) > 30

    hook_lines: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        hook_lines.extend(x for x in (await request.read()).splitlines() if x)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with TansuBroker() as broker:
            proc = await asyncio.create_subprocess_exec(
                *base,
                "--alerts", "-", "--alerts", str(d / "a.jsonl"), "--alerts", f"sqlite:///{d / 'a.db'}",
                "--alerts", f"kafka://{broker.bootstrap}/geofence.alerts",
                "--alerts", f"http://127.0.0.1:{port}/hook", "--spool-dir", str(d / "spool"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
            assert proc.returncode == 0, stderr.decode()
            consumer = AIOKafkaConsumer(
                "geofence.alerts", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
            )
            await consumer.start()
            kafka_lines: list[bytes] = []
            try:
                deadline = asyncio.get_running_loop().time() + 30
                while len(kafka_lines) < len(expected) and asyncio.get_running_loop().time() < deadline:
                    for recs in (await consumer.getmany(timeout_ms=500)).values():
                        kafka_lines.extend(r.value for r in recs if r.value is not None)
            finally:
                await consumer.stop()
    finally:
        await runner.cleanup()

    def triples(lines: list[bytes]) -> list[tuple[str, str, str]]:
        return sorted((o["alert_id"], o["status"], o["ts"]) for o in map(orjson.loads, lines))

    assert stdout == ref_out  # byte for byte, in output order
    assert (d / "a.jsonl").read_bytes() == ref_out
    assert sorted(read_triples(d / "a.jsonl")) == expected
    with sqlite3.connect(d / "a.db") as db:
        assert sorted(db.execute("SELECT alert_id, status, ts FROM alerts").fetchall()) == expected
    assert triples(kafka_lines) == expected
    assert b"\n".join(hook_lines) + b"\n" == ref_out  # the webhook got every line once, in order
