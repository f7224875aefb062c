"""``geofence run``: the embedded runner (inputs → decoders → engine → alert sinks) as a sub-command.

The options and the work live in :mod:`streams.runner` (``add_run_arguments`` and
``run_cli``), shared with ``python -m streams.runner`` and the replay tools; this
module only registers the command and documents it with runnable examples.
"""

from __future__ import annotations

import argparse

from geofence_cli.main import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, EXIT_USAGE

__all__ = ["register"]

_EXAMPLES = f"""examples:
  # simulated traffic through the shipped Yangtze catalogue, alerts on stdout (the catalogue's
  # learned dwell limits, "p99", need a baseline: learn one from the traffic first)
  geofence simulate --vessels 10 --hours 1 --seed 1 --format nmea --out traffic.nmea --labels labels.jsonl
  geofence learn traffic.nmea --out baseline.json --quiet
  geofence run --input traffic.nmea --baseline baseline.json

  # several sinks at once, dead letters and a summary; --state makes a restart resume
  geofence run --zones zones/yangtze.geojson --baseline baseline.json --input traffic.nmea \\
      --alerts alerts.jsonl --alerts sqlite:///alerts.db --alerts console \\
      --dead-letter dead.jsonl --summary summary.json --state run-state

  # a CSV with its own column names and time format (sorted by event time if it is not in order)
  geofence run --input boats.csv --format csv --columns id=ID,ts=ais_pos_timestamp,lon=longitude,lat=latitude \\
      --time-format '%d/%m/%Y %H:%M' --tz UTC --alerts alerts.jsonl

  # live feeds: a TCP server, a UDP listener on 127.0.0.1 and a Kafka topic, read together
  geofence run --input tcp://127.0.0.1:5631 --input udp://:5632 --input kafka://127.0.0.1:9092/ais.raw \\
      --alerts kafka://127.0.0.1:9092/geofence.alerts --alerts http://127.0.0.1:8080/hook

  # untimed NMEA logs get a synthetic clock; --strict stops at the first bad record
  geofence run --input old.nmea --untimed-start 2024-01-01T00:00:00Z --untimed-step-s 2 --strict

inputs:
  FILE or file://FILE (plain or .gz), '-' (stdin, the default), tcp://host:port (client, reconnects),
  udp://[host]:port (listener, host 127.0.0.1 by default),
  kafka://host:port/topic[?group=G&offset=earliest|latest] (one record = one line; group geofence-run).
  File inputs are read whole and processed merged in event-time order; see docs/runner.md.

exit codes:
  {EXIT_OK} done, or stopped cleanly by SIGINT/SIGTERM (a restart with the same --state resumes)
  {EXIT_INVALID} --strict found a bad record (its reason and location are printed)
  {EXIT_USAGE} bad options, unreadable inputs or zones, a checkpoint that does not fit
  {EXIT_FAILURE} runtime failure (a sink failed, a second signal cancelled the run)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    from streams.runner import add_run_arguments

    p = subparsers.add_parser(
        "run",
        help="decode inputs, check fences and rules, write alert lines (the embedded runner)",
        description=(
            "Read AIS NMEA, CSV or JSONL from files and live feeds, check every position against the fences "
            "and rules in event time, and write alert lines to one or more sinks."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.runner import run_cli

    return run_cli(args)
