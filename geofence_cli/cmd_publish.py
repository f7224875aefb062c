"""``geofence publish``: the gateway that decodes inputs and produces packed position batches to Kafka.

Positions are split by the partition faust would pick for each subject key (Kafka's
murmur2) and packed into one record per partition and micro-batch; see
``docs/streams.md``. Decoder dead letters go to the dead-letter topic.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from geofence.errors import GeofenceError
from geofence_cli.cmd_worker import add_topic_arguments, topics_from_args
from geofence_cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

__all__ = ["register"]

_EXAMPLE = """examples:
  geofence publish traffic.nmea --broker kafka://127.0.0.1:9092
  geofence publish suez.csv --broker kafka://127.0.0.1:9092 --columns id=ID,ts=ais_pos_timestamp,lon=longitude,\\
lat=latitude --time-format '%d/%m/%Y %H:%M'
  geofence simulate --vessels 20 --hours 1 --format nmea --out sim.nmea --labels l.jsonl
  cat sim.nmea | geofence publish - --broker kafka://127.0.0.1:9092 --rate 2000 --no-end-of-stream

exit codes: 0 published, 2 bad options or inputs, 3 broker failure
"""


def register(subparsers: Any) -> None:
    """Add the ``publish`` sub-command."""
    p = subparsers.add_parser(
        "publish",
        help="decode inputs and produce packed position batches to Kafka for `geofence worker`",
        description=(
            "Decode input files (or '-' for stdin) exactly as `geofence run` does and produce packed position "
            "batches, partitioned like faust partitions the subject key, then an end-of-stream marker per "
            "partition. A summary line (JSON) goes to stderr."
        ),
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="file (plain or .gz) or '-' for stdin")
    p.add_argument("--broker", required=True, metavar="URL", help="kafka://host:port[,host:port...]")
    p.add_argument("--format", default="auto", choices=("auto", "nmea", "csv", "jsonl"))
    p.add_argument("--columns", default=None, metavar="MAP", help="id=COL,ts=COL,lon=COL,lat=COL[,sog=,cog=,heading=]")
    p.add_argument("--time-format", default=None, metavar="FMT", help="strptime format of the ts column")
    p.add_argument("--tz", default="UTC", help="time zone of naive times (default UTC)")
    p.add_argument("--untimed-start", default=None, metavar="ISO", help="synthetic clock start for untimed records")
    p.add_argument("--untimed-step-s", type=float, default=1.0, help="synthetic clock step (default 1 s)")
    p.add_argument(
        "--partitions",
        type=int,
        default=8,
        help="partitions when the positions topic must be created (default 8; match the workers)",
    )
    add_topic_arguments(p, "positions", "deadletter")
    p.add_argument("--batch-lines", type=int, default=4096, help="input lines per micro-batch (default 4096)")
    p.add_argument("--max-batch-positions", type=int, default=4096, help="largest packed record (default 4096)")
    p.add_argument("--rate", type=float, default=None, metavar="POS_PER_S", help="pace to N positions per second")
    p.add_argument(
        "--no-end-of-stream",
        dest="end_of_stream",
        action="store_false",
        help="do not send the end-of-stream markers (more input will follow)",
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.publish import PublishConfig, publish_inputs
    from streams.runner import default_decoder_factory

    try:
        cfg = PublishConfig(
            broker=args.broker,
            topics=topics_from_args(args),
            partitions=args.partitions,
            max_batch_positions=args.max_batch_positions,
            batch_lines=args.batch_lines,
            rate_positions_s=args.rate,
            end_of_stream=args.end_of_stream,
        )
        decoders = default_decoder_factory(args)
    except GeofenceError as exc:
        print(f"geofence publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    try:
        stats = asyncio.run(publish_inputs(cfg, args.inputs, decoders))
    except GeofenceError as exc:
        print(f"geofence publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # broker unreachable, topic errors: aiokafka raises its own family
        print(f"geofence publish: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    elapsed = time.monotonic() - started
    summary = {
        "positions": stats.positions,
        "records": stats.records,
        "statics": stats.statics,
        "dead_letter": stats.dead,
        "max_ts_s": stats.max_ts_s,
        "elapsed_s": round(elapsed, 3),
        "positions_per_s": round(stats.positions / elapsed) if elapsed > 0 else None,
        "counts": stats.counts.to_dict(),
    }
    print("geofence publish: " + orjson.dumps(summary).decode(), file=sys.stderr)
    return EXIT_OK
