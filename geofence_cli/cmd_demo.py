"""``geofence demo`` (``make demo``): the whole job on simulated Yangtze traffic, offline, in about a minute.

1. History: a seeded simulation of normal traffic (no anomalies) is written to
   ``OUT/history.jsonl`` and ``geofence learn`` turns it into ``OUT/baseline.json``:
   the catalogue's ports and berths say ``max_dwell_min = "p99"``, and this is
   where their 99th percentile comes from.
2. Today: another seeded simulation, with injected anomalies (unexpected stops,
   AIS gaps, restricted entries, overspeed, position jumps, encounters, route
   deviations, container separations), is written to ``OUT/traffic.jsonl`` with
   its plans and ground-truth labels.
3. Live: the embedded runner (the ``geofence run`` pipeline) checks it against the
   catalogue fences, paced by event time (``--speed``, default 1800x: six hours in
   twelve seconds). Warnings and critical alerts stream to the console as they
   are decided; every alert line goes to ``OUT/alerts.jsonl``.
4. Replay: the same traffic is replayed into ``OUT/replay/`` (alerts, summary,
   offline ``report.html``, plots); the replay's alert lines are checked against
   the live run's, and the path to ``report.html`` is printed last.

Everything is written under ``--out`` (default ``demo_out/``, git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from geofence.alerts import Alert
from geofence.errors import GeofenceError

__all__ = ["EXIT_MISMATCH", "register"]

#: Exit code when the replay's alert lines are not the live run's, byte for byte (the demo's own check).
EXIT_MISMATCH = 3

_EXAMPLES = """examples:
  geofence demo                        # what make demo runs: 100 vessels, 6 h, paced at 1800x
  geofence demo --speed max            # no pacing
  geofence demo --vessels 300 --hours 12 --seed 3 --out /tmp/demo

exit codes:
  0  every stage ran and the replay reproduced the live run's alert lines byte for byte
  2  bad options
  3  a stage failed, or the replay's lines differ from the live run's (the first difference goes to stderr)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="simulate Yangtze traffic, learn a baseline, run the live alert stream, write a replay report",
        description=(__doc__ or "").replace("``", ""),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--vessels", type=int, default=100, help="fleet size (default 100)")
    p.add_argument("--hours", type=float, default=6.0, help="hours of traffic today (default 6)")
    p.add_argument("--history-hours", type=float, default=18.0, help="hours of normal history to learn from (18)")
    p.add_argument("--seed", type=int, default=7, help="random seed of today's traffic (history: seed + 1000)")
    p.add_argument("--speed", default="1800", metavar="max|N", help="live pacing: N x real time, or max (1800)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory (default demo_out)")
    p.set_defaults(handler=_run)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _write_jsonl(path: Path, lines: Sequence[bytes]) -> None:
    path.write_bytes(b"".join(x + b"\n" for x in lines))


def _simulate(zones: Any, vessels: int, hours: float, seed: int, anomalies: int | None, out: Path, stem: str) -> Any:
    """Simulate and write ``stem.jsonl`` (vessels, statics and containers merged by time), labels and plans."""
    from geofence.simulate import SimConfig, container_lines, jsonl_lines, label_lines, plan_lines, simulate

    sim = simulate(zones, SimConfig(vessels=vessels, hours=hours, seed=seed, anomalies_per_type=anomalies))
    keyed = [(orjson.loads(x)["ts"], x) for x in (*jsonl_lines(sim), *container_lines(sim))]
    keyed.sort(key=lambda kx: kx[0])  # ISO 8601 Z strings sort as times; stable
    _write_jsonl(out / f"{stem}.jsonl", [x for _, x in keyed])
    _write_jsonl(out / f"{stem}_labels.jsonl", label_lines(sim, include_containers=True))
    _write_jsonl(out / f"{stem}_plans.jsonl", plan_lines(sim))
    return sim


class _Serious:
    """Forwards warning and critical lines to the console sink (zone events would drown them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = "console (warnings and critical)"
        self.shown = 0

    async def start(self) -> None:
        await self.inner.start()

    async def write(self, alerts: Sequence[Alert]) -> None:
        serious = [a for a in alerts if a.severity.value != "info"]
        self.shown += len(serious)
        await self.inner.write(serious)

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


def _live(traffic: Path, zones: Any, opts: argparse.Namespace, speed: float | None, out: Path) -> tuple[Any, int]:
    """The embedded runner over today's traffic: console (serious lines) and JSONL (every line)."""
    from replay.driver import engine_factory_for
    from replay.pacing import Pacer
    from replay.tap import TapEngine
    from streams.runner import FileInput, default_decoder_factory, run
    from streams.sinks import ConsoleSink, DeadLetterJsonlSink, JsonlSink

    for name in ("alerts.jsonl", "dead_letter.jsonl"):
        (out / name).unlink(missing_ok=True)
    pacer = Pacer(speed) if speed is not None else None
    engine = TapEngine(engine_factory_for(opts).new(zones), record=False, pacer=pacer)
    console = _Serious(ConsoleSink())
    try:
        result = asyncio.run(
            run(
                [FileInput(traffic)],
                default_decoder_factory(opts),
                engine,
                [console, JsonlSink(out / "alerts.jsonl", fsync=False)],
                DeadLetterJsonlSink(out / "dead_letter.jsonl", fsync=False),
                batch_size=opts.batch_size,
                stats_every_s=0,
            )
        )
    finally:
        if pacer is not None:
            pacer.cancel()
    return result, console.shown


def _scorecard(labels_path: Path, alerts_path: Path) -> list[str]:
    """Injected anomalies per type and how many an alert of a matching type caught (same subject, in time)."""
    from geofence.timefmt import parse_iso_utc

    labels = [orjson.loads(x) for x in labels_path.read_bytes().splitlines() if x.strip()]
    firsts: dict[str, dict[str, Any]] = {}
    for line in alerts_path.read_bytes().splitlines():
        a = orjson.loads(line)
        firsts.setdefault(a["alert_id"], a)
    by_subject: dict[str, list[tuple[str, float]]] = {}
    for a in firsts.values():
        by_subject.setdefault(a["subject_id"], []).append((a["type"], parse_iso_utc(a["ts"])))
    rows: dict[str, list[int]] = {}
    for lab in labels:
        if not lab["types"]:
            continue
        start, end = parse_iso_utc(lab["start"]), parse_iso_utc(lab["end"])
        seen = by_subject.get(lab["subject_id"], [])
        hit = any(t in lab["types"] and start - 600 <= ts <= end + 1800 for t, ts in seen)
        row = rows.setdefault(lab.get("anomaly", "/".join(lab["types"])), [0, 0])
        row[0] += 1
        row[1] += hit
    return [f"  {k:<22} injected {n:>3}   caught {c:>3}" for k, (n, c) in sorted(rows.items())]


def _run(args: argparse.Namespace) -> int:
    from geofence_cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
    from replay.pacing import parse_speed

    try:
        speed = parse_speed(args.speed)
        if args.vessels < 1 or args.hours <= 0 or args.history_hours <= 0:
            raise GeofenceError("--vessels, --hours and --history-hours must be positive")
        args.out.mkdir(parents=True, exist_ok=True)
    except (GeofenceError, OSError) as exc:
        print(f"geofence demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _demo(args, speed)
    except KeyboardInterrupt:
        print("\ngeofence demo: interrupted", file=sys.stderr)
        return 130
    except (GeofenceError, OSError) as exc:
        print(f"geofence demo: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _demo(args: argparse.Namespace, speed: float | None) -> int:
    from geofence.baseline import MIN_SAMPLES
    from replay.driver import run_replay, write_report
    from replay.learn import learn
    from replay.options import FAST_BATCH_LINES, runner_namespace
    from zones import default_catalogue_path, load_zones

    t_start = time.perf_counter()
    out: Path = args.out
    zones = load_zones([default_catalogue_path()])
    _say(f"geofence demo: Yangtze fence catalogue, {len(zones)} fences, version {zones.version}; writing to {out}/")

    _say(
        f"\n[1/4] history: {args.vessels} vessels, {args.history_hours:g} h of normal traffic (seed {args.seed + 1000})"
    )
    t_step = time.perf_counter()
    _simulate(zones, args.vessels, args.history_hours, args.seed + 1000, 0, out, "history")
    baseline, _ = learn([out / "history.jsonl"], zones)
    (out / "baseline.json").write_bytes(
        orjson.dumps(baseline.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    pct = {f.id for f in zones.fences if isinstance(f.params.max_dwell_min, str)}
    learned = {z: c["all"] for z, c in baseline.dwell_min.items() if "all" in c and c["all"]["n"] >= MIN_SAMPLES}
    _say(
        f"      learned dwell percentiles for {len(learned)} fences -> {out / 'baseline.json'} "
        f"({time.perf_counter() - t_step:.1f} s); the catalogue's max_dwell_min = 'p99' fences:"
    )
    for zone_id, row in sorted(learned.items()):
        if zone_id not in pct:
            continue
        _say(f"        {zone_id:<28} {int(row['n']):>3} visits   p50 {row['p50']:6.1f} min   p99 {row['p99']:6.1f} min")

    missing = sorted(pct - set(learned))
    if missing:
        _say(f"        (fewer than {MIN_SAMPLES} visits, no learned limit: {', '.join(missing)})")

    _say(f"\n[2/4] today: {args.vessels} vessels, {args.hours:g} h, injected anomalies (seed {args.seed})")
    t_step = time.perf_counter()
    sim = _simulate(zones, args.vessels, args.hours, args.seed, None, out, "traffic")
    _say(
        f"      {len(sim.reports):,} AIS position reports, {len(sim.containers['ts']):,} container e-seal reports "
        f"-> {out / 'traffic.jsonl'} ({time.perf_counter() - t_step:.1f} s)"
    )
    opts = runner_namespace(baseline=str(out / "baseline.json"), plans=str(out / "traffic_plans.jsonl"))

    pace = "as fast as possible" if speed is None else f"paced at {speed:g}x real time"
    _say(
        f"\n[3/4] live: the embedded runner, {pace}; warnings and critical alerts as they are decided "
        f"(every line, zone events included, goes to {out / 'alerts.jsonl'})\n"
    )
    t_live = time.perf_counter()
    result, shown = _live(out / "traffic.jsonl", zones, opts, speed, out)
    counts = result.counts
    _say(
        f"\n      {counts.positions:,} positions, {result.alert_lines:,} alert lines ({shown} shown above), "
        f"{counts.dead_letter} dead letters, in {time.perf_counter() - t_live:.1f} s"
    )
    _say("      injected anomalies caught by an alert of their type:")
    for line in _scorecard(out / "traffic_labels.jsonl", out / "alerts.jsonl"):
        _say(line)

    _say(f"\n[4/4] replay of today's traffic into {out / 'replay'}/")
    t_step = time.perf_counter()
    fast = runner_namespace(**{**vars(opts), "batch_size": FAST_BATCH_LINES})
    run = run_replay([out / "traffic.jsonl"], zones, out / "replay", options=fast, progress=None)
    files = write_report(run, title="geofence demo: simulated Yangtze traffic")
    live_lines = (out / "alerts.jsonl").read_bytes()
    same = live_lines == (out / "replay" / "alerts.jsonl").read_bytes()
    _say(
        f"      {len(run.alerts):,} alert lines: "
        + ("identical to the live run's, byte for byte" if same else "DIFFERENT from the live run's (a bug)")
        + f" ({time.perf_counter() - t_step:.1f} s)"
    )
    for plot in files[1:]:
        _say(f"      plot: {plot}")
    _say(f"      summary: {out / 'replay' / 'summary.json'}")
    _say(f"\ndone in {time.perf_counter() - t_start:.0f} s. Open the report (offline, self-contained):")
    _say(str(files[0].resolve()))
    if same:
        return 0
    _explain_mismatch(live_lines, (out / "replay" / "alerts.jsonl").read_bytes(), opts.batch_size, fast.batch_size)
    return EXIT_MISMATCH


def _explain_mismatch(live: bytes, replay: bytes, live_batch: int, replay_batch: int) -> None:
    """Say on stderr why the demo exits :data:`EXIT_MISMATCH`: the first line where the two runs part.

    Both runs read the same file, with the same options, sorted the same way; nothing in them
    depends on the wall clock. They differ only in the micro-batch size, so a difference means
    the engine's output depended on where the batches were cut.
    """
    a, b = live.splitlines(), replay.splitlines()
    k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    print(
        f"geofence demo: the replay's alert lines differ from the live run's ({len(a)} live lines in batches of "
        f"{live_batch} lines, {len(b)} replay lines in batches of {replay_batch}); first difference at line {k + 1}:\n"
        f"  live:   {a[k].decode(errors='replace') if k < len(a) else '(no more lines)'}\n"
        f"  replay: {b[k].decode(errors='replace') if k < len(b) else '(no more lines)'}\n"
        "The same records in the same order gave other alert lines in other micro-batches: an engine bug "
        "(results must not depend on the batch size). Exit code 3.",
        file=sys.stderr,
    )
