"""``geofence simulate``: write a simulated Yangtze feed, its labels, containers and plans.

The core (:func:`geofence.simulate.simulate`) returns data; this adapter loads the
fences and writes the files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geofence.errors import GeofenceError
from geofence.simulate import (
    SimConfig,
    container_lines,
    jsonl_lines,
    label_lines,
    nmea_lines,
    plan_lines,
    simulate,
)
from geofence.timefmt import parse_iso_utc

__all__ = ["register"]

_EXAMPLE = """examples:
  geofence simulate --vessels 50 --hours 6 --seed 1 --format jsonl --out traffic.jsonl \\
      --labels labels.jsonl --containers containers.jsonl --plans plans.jsonl
  geofence simulate --vessels 20 --hours 2 --format nmea --out traffic.nmea --labels labels.jsonl --downsample-s 60
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` sub-command."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate Yangtze vessel and container traffic with labelled anomalies",
        description="Simulate vessels sailing the catalogue's fairways, with injected anomalies and their labels.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--vessels", type=int, default=50, help="number of vessels (default 50)")
    p.add_argument("--hours", type=float, default=6.0, help="simulated duration in hours (default 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    p.add_argument("--format", choices=("nmea", "jsonl"), default="jsonl", help="vessel feed format")
    p.add_argument("--out", required=True, type=Path, help="vessel feed output file, or - for standard output")
    p.add_argument("--labels", required=True, type=Path, help="labels JSONL output file")
    p.add_argument("--containers", type=Path, help="container e-seal JSONL output (jsonl: else merged into --out)")
    p.add_argument("--plans", type=Path, help="declared voyage plans JSONL output")
    p.add_argument("--zones", type=Path, nargs="+", help="fence files (default: the shipped Yangtze catalogue)")
    p.add_argument("--start", default="2026-06-01T00:00:00Z", help="ISO 8601 start time with zone")
    p.add_argument("--downsample-s", type=float, default=0.0, help="forward at most one report per vessel per N s")
    p.add_argument("--anomalies", type=int, default=None, help="injected anomalies per type (default ~3%% of N)")
    p.set_defaults(handler=_run)


def _write(path: Path, lines: list[bytes]) -> None:
    """Write lines to ``path``, or to standard output when the path is ``-`` (to pipe into publish or run)."""
    if str(path) == "-":
        out = sys.stdout.buffer
        out.writelines(line + b"\n" for line in lines)
        out.flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for line in lines:
            fh.write(line)
            fh.write(b"\n")


def _run(args: argparse.Namespace) -> int:
    from geofence_cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
    from zones import default_catalogue_path, load_zones

    try:
        zoneset = load_zones(args.zones or [default_catalogue_path()])
        config = SimConfig(
            vessels=args.vessels,
            hours=args.hours,
            seed=args.seed,
            start_s=parse_iso_utc(args.start),
            downsample_s=args.downsample_s,
            anomalies_per_type=args.anomalies,
        )
    except GeofenceError as exc:
        print(f"geofence simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sim = simulate(zoneset, config)
    except GeofenceError as exc:
        print(f"geofence simulate: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    containers = container_lines(sim)
    merged = args.containers is None and args.format == "jsonl"
    if args.format == "jsonl":
        feed = jsonl_lines(sim)
        if merged:
            feed = _merge(feed, containers)
    else:
        feed = [s.encode("ascii") for s in nmea_lines(sim)]
    _write(args.out, feed)
    if args.containers is not None:
        _write(args.containers, containers)
    _write(args.labels, label_lines(sim, include_containers=args.containers is not None or merged))
    if args.plans is not None:
        _write(args.plans, plan_lines(sim))
    for note in sim.notes:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"wrote {len(feed)} lines to {args.out} ({len(sim.vessels)} vessels, {len(sim.reports)} position reports, "
        f"{len(containers)} container lines, {len(sim.labels)} labels, {len(sim.plans)} plans)",
        file=sys.stderr,
    )
    return EXIT_OK


def _merge(feed: list[bytes], containers: list[bytes]) -> list[bytes]:
    """Merge container lines into the vessel feed by their ``ts`` (ISO strings sort like times)."""
    import orjson

    keyed = [(orjson.loads(x)["ts"], 0, k) for k, x in enumerate(feed)]
    keyed += [(orjson.loads(x)["ts"], 1, k) for k, x in enumerate(containers)]
    keyed.sort()
    return [feed[k] if src == 0 else containers[k] for _, src, k in keyed]
