"""``geofence zones ...``: work with zone (fence) files.

Sub-commands are registered by small functions on the ``zones`` group that
:func:`register` creates and returns. ``check`` and ``publish`` live here;
further sub-commands can be added without editing this file by a module
``geofence_cli/cmd_zones_<name>.py`` defining ``register(group)``, where
``group`` is the ``zones`` sub-parser action (see :data:`EXTENSIONS`).

examples::

    geofence zones check zones/yangtze.geojson
    geofence zones check --default extra_fences.geojson
    geofence zones publish zones/yangtze.geojson --broker kafka://127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from typing import Any

from geofence.errors import GeofenceError, ZoneError
from geofence.fence import ZoneSet
from geofence_cli.main import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, EXIT_USAGE
from zones import check_zones, default_catalogue_path, load_zones

__all__ = ["EXTENSIONS", "register", "register_check", "register_publish", "run_check", "run_publish"]

#: Optional modules ``geofence_cli.cmd_zones_<name>`` adding ``zones <name>`` sub-commands.
EXTENSIONS: tuple[str, ...] = ()


def register(subparsers: Any) -> Any:
    """Add the ``zones`` command and its sub-commands; return the ``zones`` sub-parser group."""
    parser = subparsers.add_parser(
        "zones",
        help="validate and manage zone (fence) files",
        description="Validate and manage GeoJSON zone (fence) files. See docs/zones.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n  geofence zones check zones/yangtze.geojson\n"
            "  geofence zones publish zones/yangtze.geojson --broker kafka://127.0.0.1:9092\n"
        ),
    )
    group = parser.add_subparsers(dest="zones_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda _args: _usage(parser))
    register_check(group)
    register_publish(group)
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(f"geofence_cli.cmd_zones_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"geofence_cli.cmd_zones_{name}":
                continue
            raise
        module.register(group)
    return group


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def register_check(group: Any) -> argparse.ArgumentParser:
    """Add ``zones check FILE...`` to the ``zones`` group."""
    parser: argparse.ArgumentParser = group.add_parser(
        "check",
        help="validate zone files; exit 0 if valid, 1 with one line per problem",
        description=(
            "Validate GeoJSON zone files together (ids must be unique across them). Prints one OK line "
            "with the fence count and zone-set version, or one line per problem naming the feature id."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  geofence zones check zones/yangtze.geojson\n"
            "  geofence zones check --default my_extra_fences.geojson\n"
            "exit codes: 0 valid, 1 problems found, 2 usage error\n"
        ),
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="GeoJSON FeatureCollection zone files")
    parser.add_argument("--default", action="store_true", help="also check the shipped catalogue zones/yangtze.geojson")
    parser.set_defaults(handler=run_check)
    return parser


def _validated(args: argparse.Namespace, command: str, failed_suffix: str) -> tuple[ZoneSet | None, list[str], int]:
    """The files named by ``args`` (``--default`` first), checked and loaded: (zone set or None, files, exit code).

    Prints every problem (one per line) and a FAILED line; ``failed_suffix`` says what that means
    for the command (e.g. that nothing was published).
    """
    files = [str(default_catalogue_path())] if args.default else []
    files += list(args.files)
    if not files:
        print(f"geofence zones {command}: give at least one FILE (or --default)", file=sys.stderr)
        return None, files, EXIT_USAGE
    problems = check_zones(files)
    if problems:
        for problem in problems:
            print(problem)
        print(f"FAILED: {len(problems)} problem(s) in {len(files)} file(s){failed_suffix}", file=sys.stderr)
        return None, files, EXIT_INVALID
    try:
        return load_zones(files), files, EXIT_OK
    except ZoneError as exc:  # e.g. files without any feature
        print(f"FAILED: {exc}{failed_suffix}")
        return None, files, EXIT_INVALID


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``zones check``: print an OK summary or every problem."""
    zone_set, files, code = _validated(args, "check", "")
    if zone_set is None:
        return code
    kinds = sorted({f.kind.value for f in zone_set.fences})
    print(
        f"OK: {len(zone_set)} fences in {len(files)} file(s), zone version {zone_set.version} "
        f"(kinds: {', '.join(kinds)})"
    )
    return EXIT_OK


def register_publish(group: Any) -> argparse.ArgumentParser:
    """Add ``zones publish FILE... --broker URL`` to the ``zones`` group."""
    parser: argparse.ArgumentParser = group.add_parser(
        "publish",
        help="validate zone files and publish them as one zone set to the workers' compacted zones topic",
        description=(
            "Validate GeoJSON zone files together, then publish the whole zone set to the compacted zones "
            "topic. Every `geofence worker` hot-reloads it without a restart; alerts decided from then on "
            "carry its zone_version. Nothing is published when a file has a problem."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  geofence zones publish zones/yangtze.geojson --broker kafka://127.0.0.1:9092\n"
            "  geofence zones publish --default extra.geojson --broker kafka://k1:9092 --topic geofence.zones\n"
            "exit codes: 0 published, 1 problems found (nothing published), 2 usage error, 3 broker failure\n"
        ),
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="GeoJSON FeatureCollection zone files")
    parser.add_argument(
        "--default", action="store_true", help="also include the shipped catalogue zones/yangtze.geojson"
    )
    parser.add_argument("--broker", required=True, metavar="URL", help="kafka://host:port[,host:port...]")
    parser.add_argument("--topic", default="geofence.zones", help="zones topic (default geofence.zones)")
    parser.set_defaults(handler=run_publish)
    return parser


def run_publish(args: argparse.Namespace) -> int:
    """Handler of ``zones publish``: validate, then publish the zone set; print its version."""
    zone_set, _files, code = _validated(args, "publish", "; nothing published")
    if zone_set is None:
        return code
    from streams.publish import publish_zones

    try:
        asyncio.run(publish_zones(args.broker, zone_set, args.topic))
    except GeofenceError as exc:
        print(f"geofence zones publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # aiokafka's errors: broker unreachable, topic refused
        print(f"geofence zones publish: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"published zone version {zone_set.version} ({len(zone_set)} fences) to {args.topic} on {args.broker}")
    return EXIT_OK
