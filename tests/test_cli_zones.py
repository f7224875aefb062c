"""``geofence zones check`` (and the registration of ``zones publish``): exit codes and output lines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from geofence_cli import cmd_zones
from geofence_cli.main import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from zones import default_catalogue_path, load_zones

SQUARE = [[106.70, 29.60], [106.71, 29.60], [106.71, 29.61], [106.70, 29.61], [106.70, 29.60]]


def write(tmp_path: Path, name: str, *features: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}), encoding="utf-8")
    return path


def feature(fid: str, kind: str = "port", dx: float = 0.0, **props: Any) -> dict[str, Any]:
    ring = [[x + dx, y] for x, y in SQUARE]
    return {
        "type": "Feature",
        "properties": {"id": fid, "name": fid, "kind": kind, **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_shipped_catalogue_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "check", str(default_catalogue_path())]) == EXIT_OK
    out = capsys.readouterr().out.strip().splitlines()
    zone_set = load_zones(default_catalogue_path())
    assert len(out) == 1
    assert out[0].startswith(f"OK: {len(zone_set)} fences") and zone_set.version in out[0]


def test_default_flag_checks_catalogue_with_extra_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = write(tmp_path, "extra.geojson", feature("my-extra-berth", "berth"))
    assert main(["zones", "check", "--default", str(extra)]) == EXIT_OK
    n = len(load_zones(default_catalogue_path())) + 1
    assert f"OK: {n} fences in 2 file(s)" in capsys.readouterr().out


def test_invalid_files_exit_1_with_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.geojson", feature("dup"), feature("bad-kind", "quay", dx=0.1))
    b = write(tmp_path, "b.geojson", feature("dup", dx=0.2), feature("bad-sev", dx=0.3, severity="high"))
    assert main(["zones", "check", str(a), str(b)]) == EXIT_INVALID
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 3
    assert any(line.startswith(f"{a}: bad-kind: unknown kind 'quay'") for line in lines)
    assert any(line.startswith(f"{b}: dup: duplicate id") for line in lines)
    assert any(line.startswith(f"{b}: bad-sev: rule 'severity'") for line in lines)
    assert "3 problem(s)" in captured.err


def test_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "check", str(tmp_path / "missing.geojson")]) == EXIT_INVALID
    assert "cannot read file" in capsys.readouterr().out


def test_no_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "check"]) == EXIT_USAGE
    assert main(["zones"]) == EXIT_USAGE


def test_register_exposes_the_zones_group_for_more_subcommands() -> None:
    parser = argparse.ArgumentParser()
    group = cmd_zones.register(parser.add_subparsers(dest="command"))
    extra = group.add_parser("diff")  # a name not taken by the built-in check and publish
    extra.set_defaults(handler=lambda _args: 42)
    args = parser.parse_args(["zones", "diff"])
    assert args.handler(args) == 42
    assert parser.parse_args(["zones", "check", "x.geojson"]).handler is cmd_zones.run_check
    publish = parser.parse_args(["zones", "publish", "x.geojson", "--broker", "kafka://127.0.0.1:9"])
    assert publish.handler is cmd_zones.run_publish
