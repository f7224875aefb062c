"""``geofence zones ...``: work with zone (fence) files.

Sub-commands are registered by small functions on the ``zones`` group that
:func:`register` creates and returns. ``check`` lives here; further
sub-commands (e.g. ``zones publish``) can be added without editing this file by
a module ``geofence_cli/cmd_zones_<name>.py`` defining ``register(group)``,
where ``group`` is the ``zones`` sub-parser action (see :data:`EXTENSIONS`).

examples::

    geofence zones check zones/yangtze.geojson
    geofence zones check --default extra_fences.geojson
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from geofence.errors import ZoneError
from geofence_cli.main import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from zones import check_zones, default_catalogue_path, load_zones

__all__ = ["EXTENSIONS", "register", "register_check", "run_check"]

#: Optional modules ``geofence_cli.cmd_zones_<name>`` adding ``zones <name>`` sub-commands.
EXTENSIONS = ("publish",)


def register(subparsers: Any) -> Any:
    """Add the ``zones`` command and its sub-commands; return the ``zones`` sub-parser group."""
    parser = subparsers.add_parser(
        "zones",
        help="validate and manage zone (fence) files",
        description="Validate and manage GeoJSON zone (fence) files. See docs/zones.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  geofence zones check zones/yangtze.geojson\n",
    )
    group = parser.add_subparsers(dest="zones_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda _args: _usage(parser))
    register_check(group)
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
    parser.add_argument(
        "--default", action="store_true", help="also check the shipped catalogue zones/yangtze.geojson"
    )
    parser.set_defaults(handler=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``zones check``: print an OK summary or every problem."""
    files = [str(default_catalogue_path())] if args.default else []
    files += list(args.files)
    if not files:
        print("geofence zones check: give at least one FILE (or --default)", file=sys.stderr)
        return EXIT_USAGE
    problems = check_zones(files)
    if problems:
        for problem in problems:
            print(problem)
        print(f"FAILED: {len(problems)} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return EXIT_INVALID
    try:
        zone_set = load_zones(files)
    except ZoneError as exc:  # e.g. files without any feature
        print(f"FAILED: {exc}")
        return EXIT_INVALID
    kinds = sorted({f.kind.value for f in zone_set.fences})
    print(
        f"OK: {len(zone_set)} fences in {len(files)} file(s), zone version {zone_set.version} "
        f"(kinds: {', '.join(kinds)})"
    )
    return EXIT_OK
