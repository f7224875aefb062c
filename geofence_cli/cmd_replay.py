"""``geofence replay``: recordings through the embedded runner, then the analyst's report; what-if comparisons.

The replay runs the same pipeline as ``geofence run`` (same decoders, same
engine, same alert lines) over recorded files, as fast as possible or paced by
event time, and writes into ``--out DIR``: ``alerts.jsonl``,
``dead_letter.jsonl``, ``summary.json``, ``report.html`` (self-contained,
offline) and PNG plots. See ``docs/replay.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from geofence.errors import ConfigError, GeofenceError
from geofence.fence import ZoneSet

if TYPE_CHECKING:
    from replay.driver import ReplayRun

_Side = tuple[str, ZoneSet, argparse.Namespace]

__all__ = ["register"]

_EXAMPLES = """examples:
  geofence replay traffic.nmea --zones zones/yangtze.geojson --baseline baseline.json --out out/replay
  geofence replay boats.csv --zones suez.geojson --columns id=ID,ts=ais_pos_timestamp,lon=longitude,lat=latitude \\
      --time-format '%d/%m/%Y %H:%M' --out out/suez --speed 600
  geofence replay traffic.nmea --baseline baseline.json --compare strict.toml lenient.toml --out out/whatif
  geofence replay traffic.nmea --baseline baseline.json --compare-zones zones_a.geojson zones_b.geojson --out out/z

exit codes: 0 done, 2 bad options or unreadable files, 3 failure during the replay, 130 interrupted
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` sub-command."""
    from replay.options import add_input_options

    p = subparsers.add_parser(
        "replay",
        help="replay recordings through the engine and write alerts, summary, an offline HTML report and plots",
        description=(__doc__ or "").replace("``", ""),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="recorded files (NMEA, CSV, JSONL; plain or .gz)")
    add_input_options(p)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument(
        "--speed", default="max", metavar="max|N", help="'max' (default): as fast as possible; N: N x real time"
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--compare", nargs=2, metavar=("RULES_A", "RULES_B"), help="what-if: replay under two rules files and compare"
    )
    what.add_argument(
        "--compare-zones",
        nargs=2,
        metavar=("ZONES_A", "ZONES_B"),
        help="what-if: replay under two zone files and compare",
    )
    p.add_argument("--no-report", action="store_true", help="skip report.html and the plots")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    bar.add_argument("--quiet", dest="progress", action="store_false", help="never show progress")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from geofence_cli.main import EXIT_FAILURE, EXIT_USAGE

    try:
        plan = _prepare(args)
    except (GeofenceError, OSError) as exc:
        print(f"geofence replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return plan()
    except ConfigError as exc:  # rules, baseline, plans or decoder options the engine or a decoder refused
        print(f"geofence replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"geofence replay: interrupted; the files in {args.out} are incomplete", file=sys.stderr)
        return 130
    except (GeofenceError, OSError) as exc:
        print(f"geofence replay: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a bug, not bad input: say what failed, exit 3 like geofence run
        print(f"geofence replay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        sys.stderr.flush()


def _prepare(args: argparse.Namespace) -> Callable[[], int]:
    """Validate options and load zones up front (exit 2 on problems); return the job to run."""
    from replay.options import namespace_from
    from replay.pacing import parse_speed
    from zones.catalogue import default_catalogue_path
    from zones.loader import load_zones

    speed = parse_speed(args.speed)
    for path in [*args.inputs, *(args.compare or []), *(args.compare_zones or [])]:
        if not Path(path).is_file():
            raise GeofenceError(f"{path!r} is not a readable file")
    if args.compare and args.rules:
        raise GeofenceError("--compare RULES_A RULES_B replaces --rules; give the rules files to --compare only")
    if args.compare_zones and args.zones:
        raise GeofenceError("--compare-zones ZONES_A ZONES_B replaces --zones; give the zone files to it only")
    if args.compare_zones:
        za, zb = (load_zones([z]) for z in args.compare_zones)
        sides: list[_Side] = [
            (args.compare_zones[0], za, namespace_from(args, speed)),
            (args.compare_zones[1], zb, namespace_from(args, speed)),
        ]
        return lambda: _whatif(args, sides, speed)
    zones = load_zones(args.zones or [default_catalogue_path()])
    if args.compare:
        sides = [(r, zones, namespace_from(args, speed, rules=r)) for r in args.compare]
        return lambda: _whatif(args, sides, speed)
    opts = namespace_from(args, speed)
    return lambda: _single(args, zones, opts, speed)


def _single(args: argparse.Namespace, zones: ZoneSet, opts: argparse.Namespace, speed: float | None) -> int:
    from replay.driver import run_replay, write_report

    run = run_replay(args.inputs, zones, args.out, options=opts, speed=speed, progress=args.progress)
    files = [] if args.no_report else write_report(run)
    _closing(run)
    by_type = run.summary.get("alerts_by_type", {})
    print(f"alerts: {sum(by_type.values())} incidents" + "".join(f", {k} {v}" for k, v in by_type.items()))
    for name in ("alerts.jsonl", "dead_letter.jsonl", "summary.json"):
        print(f"wrote {args.out / name}")
    for path in files:
        print(f"wrote {path}")
    return 0


def _whatif(args: argparse.Namespace, sides: list[_Side], speed: float | None) -> int:
    from replay.whatif import Side, run_whatif

    a, b = (Side(label, zones, opts) for label, zones, opts in sides)
    result = run_whatif(args.inputs, args.out, a, b, speed=speed, progress=args.progress, report=not args.no_report)
    _closing(result.a)
    _closing(result.b)
    print(result.table)
    print(f"wrote {args.out / 'compare.json'} and {args.out / 'compare.txt'} (replays in {args.out / 'a'}, "
          f"{args.out / 'b'})")
    return 0


def _closing(run: ReplayRun) -> None:
    """Timing goes to stderr, never into the output files."""
    if run.result.sorted_inputs:
        print(f"geofence replay: sorted by event time: {', '.join(run.result.sorted_inputs)}", file=sys.stderr)
    rate = run.positions / run.elapsed_s if run.elapsed_s > 0 else 0.0
    print(
        f"geofence replay: {run.positions:,} positions, {len(run.alerts):,} alert lines in {run.elapsed_s:.1f} s "
        f"({rate:,.0f} positions/s; statistics {run.summary_s:.1f} s)",
        file=sys.stderr,
    )
