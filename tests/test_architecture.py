"""The architecture as tests: the core stays pure and imports only flow inwards.

Allowed directions (README, "Architecture"):

    geofence      <- (nothing of ours)
    zones         <- geofence
    streams       <- geofence, zones
    replay        <- geofence, zones, streams
    geofence_cli  <- everything (the console script)
    benchmarks    <- everything
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

ALLOWED: dict[str, set[str]] = {
    "geofence": set(),
    "zones": {"geofence"},
    "streams": {"geofence", "zones"},
    "replay": {"geofence", "zones", "streams"},
}
OURS = {"geofence", "zones", "streams", "replay", "geofence_cli", "benchmarks"}
FORBIDDEN_IN_CORE = ("faust", "aiokafka", "aiohttp", "asyncio", "streams", "replay", "zones", "geofence_cli")


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_directions(package: str) -> None:
    """Every module of a package imports only the packages it is allowed to."""
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = (_imported_top_levels(path) & OURS) - ALLOWED[package] - {package}
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not offenders, "import direction violated:\n" + "\n".join(offenders)


def test_core_import_loads_no_io_or_streaming_module() -> None:
    """Importing geofence (all its modules) in a fresh interpreter loads no streaming/I-O stack."""
    modules = sorted(
        "geofence." + ".".join(p.relative_to(REPO / "geofence").with_suffix("").parts)
        for p in (REPO / "geofence").rglob("*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import sys, importlib\n"
        "import geofence\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_IN_CORE!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "", f"core import pulled in: {out.stdout.strip()}"


def test_core_never_reads_the_wall_clock() -> None:
    """Time arrives as data: no time.time(), datetime.now() or similar in geofence/."""
    banned = ("time.time(", "time.monotonic(", "perf_counter(", "datetime.now(", "datetime.utcnow(", "date.today(")
    hits = [
        f"{p.relative_to(REPO)}: {b}"
        for p in sorted((REPO / "geofence").rglob("*.py"))
        for b in banned
        if b in p.read_text(encoding="utf-8")
    ]
    assert not hits, "wall clock in the core:\n" + "\n".join(hits)
