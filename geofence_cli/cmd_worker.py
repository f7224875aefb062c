"""``geofence worker``: a faust-streaming worker that runs the engine on packed position batches.

Start as many as the positions topic has partitions to share; workers with the same
``--app-id`` form one consumer group. See ``docs/streams.md`` for topics, wire formats
and delivery guarantees.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from geofence.errors import GeofenceError
from geofence_cli.main import EXIT_FAILURE, EXIT_USAGE

__all__ = ["add_topic_arguments", "register", "topics_from_args"]

_EXAMPLE = """examples:
  geofence worker --broker kafka://127.0.0.1:9092
  geofence worker --broker kafka://127.0.0.1:9092 --rules rules.toml --plans plans.jsonl --baseline baseline.json
  geofence worker --broker kafka://k1:9092,k2:9092 --app-id geofence-prod --partitions 32 --state /var/lib/geofence

exit codes: 0 stopped by SIGINT/SIGTERM, 2 bad options, 3 runtime failure
"""


def add_topic_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add ``--<name>-topic`` options (defaults from :class:`streams.faust_app.TopicNames`)."""
    from streams.faust_app import TopicNames

    defaults = TopicNames()
    for name in names:
        parser.add_argument(
            f"--{name.replace('_', '-')}-topic",
            dest=f"{name}_topic",
            default=getattr(defaults, name),
            metavar="NAME",
            help=f"{name.replace('_', ' ')} topic (default {getattr(defaults, name)})",
        )


def topics_from_args(args: argparse.Namespace) -> Any:
    """The :class:`TopicNames` given by ``--*-topic`` options (absent ones keep their default)."""
    from streams.faust_app import TopicNames

    defaults = TopicNames()
    return TopicNames(
        **{name: getattr(args, f"{name}_topic", getattr(defaults, name)) for name in TopicNames.__dataclass_fields__}
    )


def register(subparsers: Any) -> None:
    """Add the ``worker`` sub-command."""
    p = subparsers.add_parser(
        "worker",
        help="run a faust-streaming worker: packed positions in, alert lines out",
        description=(
            "Consume packed position batches (from `geofence publish`), run the engine per partition with its "
            "state in faust tables, and produce alert lines. Zones come from the compacted zones topic "
            "(`geofence zones publish`), hot-reloaded; --zones is used only while that topic is empty."
        ),
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--broker", required=True, metavar="URL", help="kafka://host:port[,host:port...]")
    p.add_argument(
        "--zones",
        nargs="+",
        default=[],
        metavar="FILE",
        help="fences while the zones topic is empty (default: the built-in catalogue)",
    )
    p.add_argument("--rules", default=None, metavar="FILE", help="rules file (TOML, or JSON by .json suffix)")
    p.add_argument("--plans", default=None, metavar="FILE", help="voyage plans JSONL for route deviation")
    p.add_argument("--baseline", default=None, metavar="FILE", help="learned baseline (dwell percentiles)")
    p.add_argument("--app-id", default="geofence", help="faust app id = consumer group (default geofence)")
    p.add_argument("--partitions", type=int, default=8, help="partitions of the positions topic (default 8)")
    add_topic_arguments(p, "positions", "alerts", "deadletter", "zones", "encounter_feed")
    p.add_argument(
        "--state",
        default=None,
        metavar="DIR",
        help="keep tables in RocksDB under DIR (needs faust-streaming[rocksdict]); default in memory, "
        "recovered from the changelog topics",
    )
    p.add_argument(
        "--snapshot-every-s",
        type=float,
        default=5.0,
        help="coalescing interval of state-table writes per partition (default 5 s)",
    )
    p.add_argument(
        "--standby-replicas",
        type=int,
        default=0,
        help="faust standby table copies (default 0; see docs/streams.md before raising it)",
    )
    p.add_argument("--session-timeout-s", type=float, default=30.0, help="consumer session timeout (default 30)")
    p.add_argument("--heartbeat-s", type=float, default=3.0, help="consumer heartbeat interval (default 3)")
    p.add_argument("--rebalance-timeout-s", type=float, default=30.0, help="group rebalance timeout (default 30)")
    p.add_argument(
        "--tansu",
        action="store_true",
        help="work around the Tansu broker's ListOffsets under-report (one changelog record per batch)",
    )
    p.add_argument("--web-port", type=int, default=None, help="enable faust's web server on 127.0.0.1:PORT")
    p.add_argument("--loglevel", default="WARNING", help="faust log level (default WARNING)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.faust_app import WorkerConfig, run_worker
    from streams.worker_core import RulesEngineFactory

    try:
        if args.state is not None:
            try:
                import rocksdict  # noqa: F401
            except ImportError:
                raise GeofenceError(
                    "--state keeps tables in RocksDB, which needs `pip install faust-streaming[rocksdict]`; "
                    "without --state tables live in memory and are recovered from their changelog topics"
                ) from None
        cfg = WorkerConfig(
            broker=args.broker,
            app_id=args.app_id,
            topics=topics_from_args(args),
            partitions=args.partitions,
            store="rocksdb://" if args.state else "memory://",
            data_dir=args.state,
            snapshot_every_s=args.snapshot_every_s,
            standby_replicas=args.standby_replicas,
            session_timeout_s=args.session_timeout_s,
            heartbeat_interval_s=args.heartbeat_s,
            rebalance_timeout_s=args.rebalance_timeout_s,
            tansu_compat=args.tansu,
            web_port=args.web_port,
            loglevel=args.loglevel,
        )
        factory = RulesEngineFactory(args.rules, args.baseline, args.plans)
    except (GeofenceError, OSError) as exc:
        print(f"geofence worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    zone_files = list(args.zones)

    def fallback() -> Any:
        from zones import default_catalogue_path, load_zones

        return load_zones(zone_files or [default_catalogue_path()])

    try:
        return run_worker(cfg, factory, fallback)
    except GeofenceError as exc:
        print(f"geofence worker: {exc}", file=sys.stderr)
        return EXIT_FAILURE
