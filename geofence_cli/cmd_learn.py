"""``geofence learn``: learn normal dwell and speed per (zone, ship class) from recordings.

The recordings are replayed through the same pipeline as ``geofence run``;
visits are measured from the engine's own ``zone_enter``/``zone_exit`` events
(exactly as the ``dwell_exceeded`` rule measures dwell). The output file is read
by ``geofence run``/``replay --baseline FILE``, where ``max_dwell_min = "p99"``
in a fence's properties or the rules file means "beyond the learned 99th
percentile for this zone and ship class". See ``docs/replay.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from geofence.errors import GeofenceError

__all__ = ["register"]

_EXAMPLES = """examples:
  geofence learn history/*.nmea --zones zones/yangtze.geojson --out baseline.json
  geofence run --input today.nmea --baseline baseline.json --alerts alerts.jsonl
  geofence replay today.nmea --baseline baseline.json --out out/today

exit codes: 0 done, 2 bad options or unreadable files, 3 failure while learning, 130 interrupted
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``learn`` sub-command."""
    from replay.learn import DEFAULT_MIN_SPEED_KN
    from replay.options import add_input_options

    p = subparsers.add_parser(
        "learn",
        help="learn dwell and speed percentiles per (zone, ship class) from recordings (for max_dwell_min='p99')",
        description=(__doc__ or "").replace("``", ""),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="recorded files (NMEA, CSV, JSONL; plain or .gz)")
    add_input_options(p, baseline=False)
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="baseline JSON to write")
    p.add_argument(
        "--min-speed-kn",
        type=float,
        default=DEFAULT_MIN_SPEED_KN,
        help=f"speed samples below this are moored and not learned (default {DEFAULT_MIN_SPEED_KN})",
    )
    p.add_argument(
        "--together",
        action="store_true",
        help="replay the inputs as one run (concurrent feeds of one period) instead of independent recordings",
    )
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    bar.add_argument("--quiet", dest="progress", action="store_false", help="never show progress")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from geofence.baseline import MIN_SAMPLES
    from geofence_cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
    from replay.learn import learn
    from replay.options import namespace_from
    from zones.catalogue import default_catalogue_path
    from zones.loader import load_zones

    try:
        for path in args.inputs:
            if not Path(path).is_file():
                raise GeofenceError(f"{path!r} is not a readable file")
        zones = load_zones(args.zones or [default_catalogue_path()])
        opts = namespace_from(args)
    except (GeofenceError, OSError) as exc:
        print(f"geofence learn: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        baseline, runs = learn(
            args.inputs,
            zones,
            options=opts,
            min_speed_kn=args.min_speed_kn,
            progress=args.progress,
            together=args.together,
        )
    except KeyboardInterrupt:
        print("geofence learn: interrupted; nothing written", file=sys.stderr)
        return 130
    except (GeofenceError, OSError) as exc:
        print(f"geofence learn: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a bug, not bad input: say what failed, exit 3 like geofence run
        print(f"geofence learn: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(baseline.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    meta = baseline.meta
    print(
        f"geofence learn: {len(runs)} recording(s), {sum(r.positions for r in runs):,} positions, "
        f"{meta.get('visits', 0)} closed visits in {len(baseline.dwell_min)} zones, "
        f"{meta.get('speed_samples', 0):,} speed samples in {len(baseline.speed_kn)} zones "
        f"({sum(r.elapsed_s for r in runs):.1f} s)",
        file=sys.stderr,
    )
    for zone_id, classes in sorted(baseline.dwell_min.items()):
        row = classes.get("all", {})
        n = int(row.get("n", 0))
        note = "" if n >= MIN_SAMPLES else f"  (fewer than {MIN_SAMPLES} visits: no learned limit)"
        print(f"  {zone_id:<32} visits {n:>5}  dwell p50 {row.get('p50', 0):8.1f} min  "
              f"p99 {row.get('p99', 0):8.1f} min{note}")
    print(f"wrote {args.out}")
    return EXIT_OK
