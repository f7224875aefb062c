"""Entry point of the ``geofence`` console script.

Each sub-command lives in its own module ``geofence_cli/cmd_<name>.py`` that
defines ``register(subparsers)``; the module is imported only when present, so
commands stay small and independent.

Exit codes: 0 success, 1 invalid input found (e.g. ``zones check``), 2 usage
error, 3 runtime failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["EXIT_FAILURE", "EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3

_COMMANDS = ("zones", "simulate", "run", "publish", "worker", "replay", "learn", "demo")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geofence",
        description="Electronic fences and early warnings for Yangtze ships and containers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  geofence zones check zones/*.geojson\n"
            "  geofence simulate --vessels 50 --hours 6 --seed 1 --format jsonl --out traffic.jsonl\n"
            "  geofence run --zones zones/yangtze.geojson --input traffic.jsonl --alerts alerts.jsonl\n"
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"geofence_cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"geofence_cli.cmd_{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
