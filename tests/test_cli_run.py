"""``geofence run`` end to end: through ``geofence_cli.main.main`` and through the console script.

The input is the simulator's Yangtze traffic (NMEA with tag-block times, and JSONL),
decoded by the real decoders and judged by the real engine (:func:`tests.fakes.sim_world`).
The kill -9 acceptance through ``geofence run`` is in ``tests/test_checkpoint_restart.py``,
every sink at once in ``tests/test_sinks.py``.
"""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from geofence_cli.main import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from streams.checkpoint import load_checkpoint
from tests.fakes import BOX_GEOJSON, read_triples, sim_world

GEOFENCE = Path(sys.executable).parent / "geofence"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Simulated traffic (NMEA, JSONL, JSONL grouped by subject) and zones: :func:`tests.fakes.sim_world`."""
    return sim_world(tmp_path_factory.mktemp("world"))


def _run(args: list[str]) -> int:
    return main(["run", "--stats-every-s", "0", *args])


def _summary(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(path.read_bytes())
    return out


@pytest.fixture(scope="module")
def reference(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One uninterrupted in-process run over the NMEA file: alerts, summary, dead letters."""
    d = tmp_path_factory.mktemp("ref")
    out = {"alerts": d / "alerts.jsonl", "summary": d / "summary.json", "dead": d / "dead.jsonl"}
    code = _run(
        [
            "--zones", str(world["zones"]), "--input", str(world["nmea"]), "--alerts", str(out["alerts"]),
            "--summary", str(out["summary"]), "--dead-letter", str(out["dead"]),
        ]
    )  # fmt: skip
    assert code == EXIT_OK
    return out


# -- options and help ----------------------------------------------------------------------------


def test_help_has_every_option_exit_codes_and_examples_that_parse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in (
        "--zones", "--input", "--format", "--columns", "--time-format", "--tz", "--untimed-start",
        "--untimed-step-s", "--strict", "--alerts", "--dead-letter", "--summary", "--plans", "--rules",
        "--baseline", "--state",
    ):  # fmt: skip
        assert f"{opt} " in text, opt
    assert "{auto,nmea,csv,jsonl}" in text
    for code in (EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_FAILURE):
        assert f"\n  {code} " in text
    # Every `geofence run` example is a valid command line for this parser.
    commands = _examples(text)
    assert len([c for c in commands if c.startswith("geofence run")]) >= 4
    from geofence_cli.main import _build_parser

    parser = _build_parser()
    for cmd in commands:
        if cmd.startswith("geofence run"):
            args = parser.parse_args(shlex.split(cmd)[1:])
            assert args.command == "run" and args.input, cmd


def _examples(help_text: str) -> list[str]:
    """The example command lines of ``geofence run --help`` (continuations joined, comments dropped)."""
    block = help_text.split("examples:", 1)[1].split("\ninputs:", 1)[0].replace("\\\n", " ")
    return [ln.strip() for ln in block.splitlines() if ln.strip().startswith("geofence ")]


@pytest.mark.slow
def test_the_first_help_example_runs_as_written(tmp_path: Path) -> None:
    """Examples are tests: simulate, learn a baseline, run, exactly as ``geofence run --help`` shows them."""
    text = subprocess.run([str(GEOFENCE), "run", "--help"], capture_output=True, check=True, text=True).stdout
    first = _examples(text)[:3]
    assert [c.split()[1] for c in first] == ["simulate", "learn", "run"]
    for cmd in first:
        done = subprocess.run([str(GEOFENCE), *shlex.split(cmd)[1:]], capture_output=True, cwd=tmp_path, timeout=300)
        assert done.returncode == EXIT_OK, (cmd, done.stderr.decode())
    lines = done.stdout.splitlines()
    assert lines and all(orjson.loads(x)["type"] for x in lines)


# -- in process and as a console script --------------------------------------------------------------


@pytest.mark.parametrize("stdin", ["pipe", "file"])
def test_the_console_script_on_stdin_matches_the_in_process_file_run(
    world: dict[str, Path], reference: dict[str, Path], tmp_path: Path, stdin: str
) -> None:
    """stdin (a live input: no sorting) gives the file's alert lines; as a pipe, and redirected from a file."""
    summary = tmp_path / "s.json"
    cmd = [str(GEOFENCE), "run", "--zones", str(world["zones"]), "--summary", str(summary), "--stats-every-s", "0"]
    if stdin == "pipe":
        done = subprocess.run(cmd, input=world["nmea"].read_bytes(), capture_output=True, timeout=120, cwd=tmp_path)
    else:
        with open(world["nmea"], "rb") as fh:  # `geofence run < FILE`
            done = subprocess.run(cmd, stdin=fh, capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr.decode()
    got = sorted((o["alert_id"], o["status"], o["ts"]) for o in map(orjson.loads, done.stdout.splitlines()))
    assert got == sorted(read_triples(reference["alerts"]))
    assert len(got) > 30 and any(t[1] == "closed" for t in got)
    assert b"geofence-run elapsed_s=" in done.stderr  # timing goes to stderr, never to the summary
    live, ref = _summary(summary), _summary(reference["summary"])
    assert live["inputs"] == ["-"] and ref["sorted_inputs"] == []
    for key in ("inputs", "sorted_inputs", "notes"):
        live.pop(key), ref.pop(key)
    assert live == ref
    assert ref["counts"]["positions"] > 5000 and ref["accounting_balanced"]


def test_a_file_out_of_event_time_order_is_sorted_in_bounded_memory(world: dict[str, Path], tmp_path: Path) -> None:
    """JSONL grouped by subject (like the Suez CSV) gives the time-ordered file's alerts, with a 50 kB sort buffer."""
    outs = {}
    for name in ("jsonl", "grouped"):
        d = tmp_path / name
        d.mkdir()
        code = _run(
            [
                "--zones", str(world["zones"]), "--input", str(world[name]), "--alerts", str(d / "a.jsonl"),
                "--summary", str(d / "s.json"), "--sort-memory-mb", "0.05",
            ]
        )  # fmt: skip
        assert code == EXIT_OK
        outs[name] = d
    assert (outs["grouped"] / "a.jsonl").read_bytes() == (outs["jsonl"] / "a.jsonl").read_bytes()
    assert len(read_triples(outs["jsonl"] / "a.jsonl")) > 20
    s_sorted, s_plain = _summary(outs["grouped"] / "s.json"), _summary(outs["jsonl"] / "s.json")
    assert s_sorted["sorted_inputs"] == [str(world["grouped"])] and s_plain["sorted_inputs"] == []
    assert any("not in event-time order" in n for n in s_sorted["notes"])
    assert s_sorted["counts"] == s_plain["counts"] and s_sorted["late"] == 0


def test_exit_codes(world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    box = tmp_path / "box.geojson"
    box.write_bytes(orjson.dumps(BOX_GEOJSON))  # one small fence: the engine builds at once
    zones = ["--zones", str(box)]
    lines = world["nmea"].read_bytes().splitlines()[:50]
    bad_line = 7
    lines[bad_line - 1] = lines[bad_line - 1][:-2] + (b"00" if not lines[bad_line - 1].endswith(b"00") else b"11")
    bad = tmp_path / "bad.nmea"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    assert _run([*zones, "--input", str(bad), "--strict", "--alerts", str(tmp_path / "b.jsonl")]) == EXIT_INVALID
    assert f"{bad} line {bad_line}: checksum" in capsys.readouterr().err
    for args, needle in (
        (["--input", str(tmp_path / "missing.nmea")], "missing.nmea"),
        (["--input", "tcp://127.0.0.1"], "no port"),
        (["--input", str(bad), "--columns", "id"], "KEY=COLUMN"),
        (["--input", str(bad), "--alerts", "ftp://x/y"], "unknown scheme"),
        (["--input", str(bad), "--sort-memory-mb", "0"], "must be > 0"),
        (["--input", "udp://203.0.113.1:9"], "cannot listen"),  # found when the run starts: still a usage error
    ):
        code = _run([*zones, *args])
        err = capsys.readouterr().err
        assert code == EXIT_USAGE and needle in err, (args, err)
    with pytest.raises(SystemExit) as exc:
        main(["run", "--no-such-option"])
    assert exc.value.code == EXIT_USAGE
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    code = _run([*zones, "--input", str(bad), "--alerts", f"sqlite:///{blocked}/alerts.db"])
    assert code == EXIT_FAILURE and "geofence run:" in capsys.readouterr().err


def test_real_suez_csv_grouped_by_vessel_is_sorted_and_fully_accounted(real_data: Path, tmp_path: Path) -> None:
    csv = real_data / "csv" / "movingpandas_evergiven_boat-positions.csv"
    zones = tmp_path / "suez.geojson"
    ring = [[32.3, 29.8], [32.7, 29.8], [32.7, 30.2], [32.3, 30.2], [32.3, 29.8]]
    zones.write_bytes(
        orjson.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": "suez-south", "name": "Suez south", "kind": "anchorage"},
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                    }
                ],
            }
        )
    )
    code = _run(
        [
            "--zones", str(zones), "--input", str(csv), "--format", "csv",
            "--columns", "id=ID,ts=ais_pos_timestamp,lon=longitude,lat=latitude",
            "--time-format", "%d/%m/%Y %H:%M", "--summary", str(tmp_path / "s.json"),
            "--alerts", str(tmp_path / "a.jsonl"), "--sort-memory-mb", "1",
        ]
    )  # fmt: skip
    assert code == EXIT_OK
    s = _summary(tmp_path / "s.json")
    assert s["sorted_inputs"] == [str(csv)]
    assert s["counts"]["positions"] == 22287 and s["accounting_balanced"]
    assert s["dead_letter_reasons"].get("late", 0) == 0  # unsorted, every vessel after the first would be late


# -- live input, stats line, SIGTERM ------------------------------------------------------------------


def _serve_file_once(data: bytes) -> tuple[socket.socket, Callable[[], None]]:
    """A TCP server on 127.0.0.1 that sends ``data`` to its first client and keeps the connection open."""
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conns.append(conn)
        for i in range(0, len(data), 4000):
            conn.sendall(data[i : i + 4000])
            time.sleep(0.002)

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        for c in conns:
            c.close()
        srv.close()

    return srv, close


def test_tcp_input_stats_lines_and_sigterm(world: dict[str, Path], reference: dict[str, Path], tmp_path: Path) -> None:
    data = world["nmea"].read_bytes()
    n_lines = data.count(b"\n")
    srv, close = _serve_file_once(data)
    state, alerts, summary = tmp_path / "state", tmp_path / "a.jsonl", tmp_path / "s.json"
    port = srv.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(GEOFENCE), "run", "--zones", str(world["zones"]), "--input", f"tcp://127.0.0.1:{port}",
            "--alerts", str(alerts), "--summary", str(summary), "--state", str(state),
            "--stats-every-s", "0.2", "--checkpoint-every-s", "0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "runner died or made no progress"
            ck = load_checkpoint(state) if (state / "checkpoint.bin").exists() else None
            if ck is not None and ck.inputs[0].lines == n_lines:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # at least two stats lines
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        close()
    assert proc.returncode == EXIT_OK, err.decode()
    stats = [ln for ln in err.decode().splitlines() if ln.startswith("geofence-stats")]
    assert stats
    fields = dict(kv.split("=", 1) for kv in stats[-1].split()[1:])
    for key in ("positions_per_s", "lag_s", "watermark_delay_s", "dead_letter_per_s", "dead_letter_pct", "open_alerts"):
        assert key in fields
    assert int(fields["positions"]) > 5000 and float(fields["lag_s"]) > 0
    s = _summary(summary)
    assert s["finished"] is False and s["counts"]["input_lines"] == n_lines
    assert s["open_alerts"] == int(fields["open_alerts"])
    # A live run stopped before the end emits a subset of the whole run's lines (no timers fired at the end).
    live, whole = set(read_triples(alerts)), set(read_triples(reference["alerts"]))
    assert live and live <= whole
