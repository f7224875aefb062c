"""``geofence publish``, ``geofence worker`` and ``geofence zones publish`` without a broker: options and errors."""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import orjson
import pytest

from geofence.errors import ConfigError
from geofence_cli.main import EXIT_INVALID, EXIT_USAGE, main
from streams.faust_app import TopicNames, WorkerConfig, bootstrap_servers

UNUSED_BROKER = "kafka://127.0.0.1:9"  # nothing listens there; these tests never connect


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", [["publish"], ["worker"], ["zones", "publish"]])
def test_help_shows_runnable_examples(command: list[str]) -> None:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    assert "examples:" in out.getvalue() and "--broker kafka://" in out.getvalue()


def test_zones_publish_refuses_invalid_files_and_publishes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(
        orjson.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": "x", "name": "x", "kind": "harbour"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[110, 30], [110.1, 30], [110.1, 30.1], [110, 30]]],
                        },
                    }
                ],
            }
        )
    )
    code, out, err = _run("zones", "publish", str(bad), "--broker", UNUSED_BROKER)
    assert code == EXIT_INVALID
    assert "x" in out and "nothing published" in err


def test_zones_publish_needs_a_file() -> None:
    code, _out, err = _run("zones", "publish", "--broker", UNUSED_BROKER)
    assert code == EXIT_USAGE and "FILE" in err


def test_zones_check_is_still_there() -> None:
    code, out, _err = _run("zones", "check", "--default")
    assert code == 0 and out.startswith("OK:")


def test_publish_refuses_a_missing_input(tmp_path: Path) -> None:
    code, _out, err = _run("publish", str(tmp_path / "nope.nmea"), "--broker", UNUSED_BROKER)
    assert code == EXIT_USAGE and "nope.nmea" in err and "is not a file" in err


def test_worker_state_without_rocksdb_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("faust")
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        code, _out, err = _run("worker", "--broker", UNUSED_BROKER, "--state", str(tmp_path))
        assert code == EXIT_USAGE and "rocksdict" in err
    else:
        pytest.skip("rocksdict is installed: --state is usable")


def test_worker_refuses_inconsistent_timeouts() -> None:
    code, _out, err = _run("worker", "--broker", UNUSED_BROKER, "--heartbeat-s", "10", "--session-timeout-s", "5")
    assert code == EXIT_USAGE and "heartbeat" in err


@pytest.mark.parametrize(
    ("url", "servers"),
    [("kafka://127.0.0.1:9092", "127.0.0.1:9092"), ("kafka://a:1,kafka://b:2", "a:1,b:2"), ("h:3/", "h:3")],
)
def test_broker_urls(url: str, servers: str) -> None:
    assert bootstrap_servers(url) == servers


@pytest.mark.parametrize("url", ["http://h:1", "kafka://", ""])
def test_bad_broker_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="broker"):
        bootstrap_servers(url)


def test_topic_renames_reach_the_config() -> None:
    from geofence_cli.cmd_worker import add_topic_arguments, topics_from_args

    parser = argparse.ArgumentParser()
    add_topic_arguments(parser, "positions", "alerts", "deadletter", "zones", "encounter_feed")
    topics = topics_from_args(parser.parse_args(["--alerts-topic", "ops.alerts", "--encounter-feed-topic", "f"]))
    assert topics == TopicNames(alerts="ops.alerts", encounter_feed="f")
    with pytest.raises(ConfigError, match="partitions"):
        WorkerConfig(broker=UNUSED_BROKER, partitions=0)
