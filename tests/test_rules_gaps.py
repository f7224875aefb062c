"""ais_gap (opens while silent, closes on reappearance) and feed_outage (holds back gaps)."""

from __future__ import annotations

import orjson

from geofence.engine import Engine
from tests.test_engine_support import T0, batch, fence, run, zones

ZS = zones(fence("port1", "port", 0.0, 0.0, 0.1, 0.1))


def _rows(silent_from: float, silent_to: float, lon: float = 0.05) -> list[dict[str, object]]:
    rows = []
    for k in range(0, 3 * 360):
        t = T0 + k * 10
        rows.append({"sid": "other", "ts": t, "lon": 0.02, "lat": 0.02, "sog": 0.0})
        if not silent_from <= t - T0 < silent_to:
            rows.append({"sid": "dark", "ts": t + 1, "lon": lon, "lat": 0.05, "sog": 0.0})
    return rows


def test_gap_opens_while_the_subject_is_silent() -> None:
    eng = Engine(ZS)
    rows = _rows(3600, 7200)
    opened_at = None
    seen = []
    for k in range(0, len(rows), 50):
        out = eng.process(batch(rows[k : k + 50]))
        seen += out.alerts
        for a in out.alerts:
            if a.type.value == "ais_gap" and a.status.value == "open":
                opened_at = rows[k + 49]["ts"]
                assert a.ts_s == T0 + 3600 - 10 + 1 + 1800  # last report + 30 min
                assert opened_at < T0 + 7200  # still silent when handed out
    assert opened_at is not None
    lines = [a for a in seen + eng.finish().alerts if a.type.value == "ais_gap"]
    assert [a.status.value for a in lines] == ["open", "closed"]
    assert lines[1].details["gap_s"] == 3610.0
    assert lines[1].details["jump_m"] == 0.0


def test_short_silence_and_far_away_subjects_give_no_gap() -> None:
    assert not [x for x in run(Engine(ZS), _rows(3600, 4600)) if b"ais_gap" in x]
    assert not [x for x in run(Engine(ZS), _rows(3600, 7200, lon=1.0)) if b"ais_gap" in x]


def test_receiver_outage_raises_feed_outage_and_no_ais_gap() -> None:
    rows = []
    for k in range(0, 3 * 360):
        t = T0 + k * 10
        if not 360 <= k < 720:  # receiver A dead for an hour
            rows += [
                {"sid": f"v{j}", "ts": t + j * 0.1, "lon": 0.01 + 0.004 * j, "lat": 0.05, "sog": 0.0, "receiver": "A"}
                for j in range(20)
            ]
        rows.append({"sid": "w1", "ts": t + 5, "lon": 0.05, "lat": 0.02, "sog": 0.0, "receiver": "B"})
    got = [orjson.loads(x) for x in run(Engine(ZS), rows, 997)]
    outage = [(d["subject_id"], d["status"]) for d in got if d["type"] == "feed_outage"]
    assert outage == [("A", "open"), ("A", "closed")]
    assert not [d for d in got if d["type"] == "ais_gap"]


def test_gap_without_outage_of_a_shared_receiver_still_fires() -> None:
    rows = []
    for k in range(0, 3 * 360):
        t = T0 + k * 10
        rows.append({"sid": "w1", "ts": t, "lon": 0.05, "lat": 0.02, "sog": 0.0, "receiver": "A"})
        if k < 360:
            rows.append({"sid": "v1", "ts": t + 1, "lon": 0.05, "lat": 0.05, "sog": 0.0, "receiver": "A"})
    got = [orjson.loads(x) for x in run(Engine(ZS), rows)]
    assert [(d["type"], d["status"]) for d in got if d["type"] in ("ais_gap", "feed_outage")] == [("ais_gap", "open")]
