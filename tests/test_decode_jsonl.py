"""Unit and property tests of the JSONL decoder (geofence.decode.jsonl)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.decode import DecodeResult, JsonlDecoder, is_valid_iso6346
from geofence.decode._times import TimeParser
from geofence.positions import EventKind, SubjectKind

T0 = 1_717_200_000  # 2024-06-01T00:00:00Z
ISO0 = "2024-06-01T00:00:00Z"


def rec(**kw: Any) -> bytes:
    base: dict[str, Any] = {"id": "413000001", "ts": ISO0, "lon": 106.55, "lat": 29.57}
    base.update(kw)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def run(lines: Sequence[str | bytes], chunk: int | None = None, **kwargs: object) -> DecodeResult:
    raw = [x.encode() if isinstance(x, str) else x for x in lines]
    dec = JsonlDecoder("test.jsonl", **kwargs)  # type: ignore[arg-type]
    step = chunk or max(1, len(raw))
    results = [dec.feed(raw[i : i + step], i + 1) for i in range(0, len(raw), step)]
    results.append(dec.close())
    out = DecodeResult.concat(results)
    assert out.counts.balanced(), out.counts.to_dict()
    assert out.counts.input_lines == len(raw)
    return out


def test_schema_fields_and_defaults() -> None:
    b = run([rec(sog=8.5, cog=90.0, heading=88, receiver="r1")]).positions
    assert b.subject_id.tolist() == ["413000001"] and b.ts_s.tolist() == [T0]
    assert (b.lon_deg[0], b.lat_deg[0], b.sog_kn[0], b.cog_deg[0], b.heading_deg[0]) == (106.55, 29.57, 8.5, 90, 88)
    assert b.kind[0] == SubjectKind.VESSEL and b.receiver[0] == "r1" and b.line[0] == 1


def test_integer_mmsi_is_read_as_a_string() -> None:
    b = run([rec(id=413000001), rec(id=413000002.0)]).positions
    assert b.subject_id.tolist() == ["413000001", "413000002"]
    assert all(type(s) is str for s in b.subject_id)


@pytest.mark.parametrize(
    ("ts", "want"),
    [
        (ISO0, T0),
        ("2024-06-01T08:00:00+08:00", T0),
        ("2024-06-01T00:00:00.250Z", T0 + 0.25),
        ("2024-06-01 00:00:00Z", T0),
        (T0, T0),
        (T0 + 0.5, T0 + 0.5),
        (T0 * 1000, T0),  # epoch milliseconds
        ("1717200000", T0),
    ],
)
def test_time_forms(ts: object, want: float) -> None:
    assert run([rec(ts=ts)]).positions.ts_s.tolist() == [want]


def test_naive_time_is_read_in_tz() -> None:
    assert run([rec(ts="2024-06-01T08:00:00")], tz="Asia/Shanghai").positions.ts_s.tolist() == [T0]


def test_not_available_values_become_nan() -> None:
    b = run([rec(sog=102.3, cog=360.0, heading=511)]).positions
    assert all(math.isnan(v) for v in (b.sog_kn[0], b.cog_deg[0], b.heading_deg[0]))


def test_nan_literals_are_missing_not_dead() -> None:
    lines = [b'{"id": "1", "ts": "2024-06-01T00:00:00Z", "lon": 1.5, "lat": 2.5, "sog": NaN, "cog": Infinity}',
             b'{"id": "2", "ts": "2024-06-01T00:00:00Z", "lon": NaN, "lat": NaN}']
    result = run(lines)
    assert result.counts.positions == 1 and math.isnan(result.positions.sog_kn[0])
    assert math.isnan(result.positions.cog_deg[0])
    assert [(d.line, d.reason) for d in result.dead] == [(2, "missing_field")]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (rec(lat=95.0), "out_of_range"),
        (rec(lon=-180.5), "out_of_range"),
        (b'{"id": "1", "ts": 1717200000, "lon": 1e999, "lat": 1}', "unparseable"),  # overflows a double
        (rec(ts="yesterday"), "bad_time"),
        (rec(ts="2024-02-30T00:00:00Z"), "bad_time"),
        (rec(ts=None), "missing_field"),
        (rec(ts=...), "missing_field"),
        (rec(id=...), "missing_field"),
        (rec(id=""), "missing_field"),
        (rec(lat=...), "missing_field"),
        (rec(id=[1, 2]), "bad_value"),
        (rec(lon="east"), "bad_value"),
        (rec(lon=True), "bad_value"),
        (rec(kind="boat"), "bad_value"),
        (rec(id="CSQU3054384", kind="container"), "bad_container_id"),
        (rec(id="NOTACONTAINER", kind="container"), "bad_container_id"),
        (rec(id="CSQU3054383", kind="container", event="impound"), "bad_value"),
        (b'{"id": "1", "ts": ', "unparseable"),
        (b"[1, 2, 3]", "unparseable"),
        (b"\xff\xfe{}", "unparseable"),
    ],
)
def test_bad_records_are_dead_lettered_with_their_reason(line: bytes, reason: str) -> None:
    result = run([rec(), line, rec(id="2")])
    assert [(d.line, d.reason) for d in result.dead] == [(2, reason)]
    assert result.positions.subject_id.tolist() == ["413000001", "2"]
    assert result.positions.line.tolist() == [1, 3]


def test_containers_carrier_and_release_event() -> None:
    lines = [
        rec(id="csqu 305438 3", kind="container", carrier=413000001),
        rec(id="CSQU3054383", kind="container", carrier="413000001", event="release", zone_id="CQ-CUSTOMS-1"),
        rec(id="CSQU3054383", kind="Container", event="RELEASE"),
    ]
    b = run(lines).positions
    assert b.subject_id.tolist() == ["CSQU3054383"] * 3  # canonical ISO 6346 form
    assert is_valid_iso6346(b.subject_id[0])
    assert b.kind.tolist() == [SubjectKind.CONTAINER] * 3
    assert b.carrier_id.tolist() == ["413000001", "413000001", ""]
    assert b.event.tolist() == [EventKind.NONE, EventKind.RELEASE, EventKind.RELEASE]
    assert b.event_zone.tolist() == ["", "CQ-CUSTOMS-1", ""]


def test_static_lines_and_ais_types() -> None:
    lines = [
        orjson.dumps({"type": "static", "id": "413000001", "ts": ISO0, "name": "CHANGJIANG 1", "ship_type": 70,
                      "length_m": 90.0, "beam_m": 14.0, "destination": "CHONGQING"}),
        orjson.dumps({"type": "AIS.5", "id": 413000002, "ts": ISO0, "lon": None, "lat": None, "name": "X"}),
        orjson.dumps({"type": "AIS.4", "id": 2573238, "ts": ISO0, "lon": 10.0, "lat": 59.0}),
        orjson.dumps({"type": "AIS.18", "id": 413000003, "ts": ISO0, "lon": 10.0, "lat": 59.0}),
        orjson.dumps({"id": "413000004", "ts": ISO0, "callsign": "BX4"}),  # no position, static data
    ]
    result = run(lines)
    assert (result.counts.positions, result.counts.static, result.counts.other) == (1, 3, 1)
    first = result.statics[0]
    assert (first.subject_id, first.name, first.ship_type, first.length_m, first.destination) == (
        "413000001", "CHANGJIANG 1", 70, 90.0, "CHONGQING")
    assert first.ts_s == T0
    assert [s.subject_id for s in result.statics] == ["413000001", "413000002", "413000004"]


def test_columns_mapping_with_nested_keys() -> None:
    line = orjson.dumps({"ssvid": "209515000", "timestamp": "2021-01-01T00:03:00+00:00",
                         "pos": {"x": 4.1, "y": 51.9}, "speed": 12.0, "course": 45.0})
    cols = {"id": "ssvid", "ts": "timestamp", "lon": "pos.x", "lat": "pos.y", "sog": "speed", "cog": "course"}
    b = run([line], columns=cols).positions
    assert (b.subject_id[0], b.lon_deg[0], b.lat_deg[0], b.sog_kn[0], b.cog_deg[0]) == ("209515000", 4.1, 51.9, 12,
                                                                                        45)


def test_blank_lines_are_skipped_and_a_bad_line_in_a_big_batch_is_isolated() -> None:
    lines = [rec(id=str(k)) for k in range(500)]
    lines[137] = b"{oops"
    lines[400] = b""
    lines[401] = b"   "
    result = run(lines)
    assert [(d.line, d.reason) for d in result.dead] == [(138, "unparseable")]
    assert result.counts.skipped == 2 and result.counts.positions == 497
    assert result.positions.line.tolist() == [k + 1 for k in range(500) if k not in (137, 400, 401)]


def test_too_long_line() -> None:
    result = run([rec(name="x" * 300)], max_line_bytes=100)
    assert [d.reason for d in result.dead] == ["too_long"]


def test_simulator_output_decodes_completely() -> None:
    from geofence.simulate import SimConfig, container_lines, jsonl_lines, simulate
    from zones import default_catalogue_path, load_zones

    sim = simulate(load_zones([default_catalogue_path()]), SimConfig(vessels=6, hours=1, seed=3))
    lines = jsonl_lines(sim)
    result = run(lines, chunk=997)
    assert result.counts.dead_letter == 0
    assert result.counts.positions == len(sim.reports.ts) and result.counts.static == len(sim.statics)
    containers = container_lines(sim)
    if containers:
        c = run(containers)
        assert c.counts.dead_letter == 0 and set(c.positions.kind.tolist()) == {SubjectKind.CONTAINER}


# ---------------------------------------------------------------------------------------------- properties

_value = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**13), st.floats(allow_nan=False),
                   st.text(max_size=12), st.sampled_from(["container", "vessel", "release", "static", "AIS.5", ISO0]))
_record = st.dictionaries(st.sampled_from(["id", "ts", "lon", "lat", "sog", "kind", "event", "type", "name"]),
                          _value, max_size=9)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=30))
def test_every_byte_line_is_accounted_for(lines: list[bytes]) -> None:
    result = run(lines)
    assert len(result.dead) == result.counts.dead_letter


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(_record.map(orjson.dumps), st.just(b""), st.just(b"{bad")), min_size=1, max_size=40),
       st.sampled_from([1, 7]))
def test_batch_size_independence_and_string_ids(lines: list[bytes], chunk: int) -> None:
    whole = run(lines)
    part = run(lines, chunk=chunk)
    assert part.counts.to_dict() == whole.counts.to_dict()
    assert part.positions.subject_id.tolist() == whole.positions.subject_id.tolist()
    for name in ("ts_s", "lon_deg", "lat_deg", "sog_kn", "line", "kind", "event"):
        assert np.array_equal(getattr(part.positions, name), getattr(whole.positions, name), equal_nan=True), name
    assert [(d.line, d.reason) for d in part.dead] == [(d.line, d.reason) for d in whole.dead]
    assert part.statics == whole.statics
    assert all(type(s) is str for s in whole.positions.subject_id)
    assert all(type(s.subject_id) is str for s in whole.statics)


_number = st.one_of(st.none(), st.integers(-400, 400), st.floats(-400, 400), st.floats(allow_nan=False))
_typed_record = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(
            st.sampled_from(["413000001", "CSQU3054383", "MSCU1234565", ""]),
            st.integers(0, 10**9),
            st.sampled_from([2**64 - 1, 2**64, -(2**63) - 1, 10**30]),  # orjson reads beyond 64 bits as floats
        ),
        "ts": st.one_of(st.just(ISO0), st.integers(T0, T0 + 86400), st.floats(T0, T0 + 86400), st.just("x")),
        "lon": _number, "lat": _number, "sog": _number, "cog": _number, "heading": _number,
        "kind": st.sampled_from(["vessel", "container", "boat", None]),
        "carrier": st.sampled_from(["413000001", "", None]), "event": st.sampled_from(["release", "other", None]),
        "imo": st.sampled_from([9074729, 10**25, None]), "receiver": st.sampled_from(["rx-1", 10**21, None]),
        "zone_id": st.sampled_from(["cq-bonded", None]),
        "type": st.sampled_from([1, 5, 8, "static", None]), "name": st.sampled_from(["CHANGJIANG 1", None]),
        "ship_type": st.sampled_from([70, 80.0, None]), "extra": st.just([1, {"a": 2}]),
    },
)


def _as_tuple(result: DecodeResult) -> tuple[Any, ...]:
    p = result.positions
    cols = tuple(getattr(p, f).tolist() for f in ("subject_id", "kind", "event", "carrier_id", "event_zone",
                                                   "receiver", "line"))
    nums = tuple(np.nan_to_num(getattr(p, f), nan=-1e9).tolist() for f in ("ts_s", "lon_deg", "lat_deg", "sog_kn",
                                                                             "cog_deg", "heading_deg"))
    dead = [(d.line, d.reason, d.detail) for d in result.dead]
    return cols, nums, dead, result.statics, result.counts.to_dict()


@settings(max_examples=150, deadline=None)
@given(st.lists(_typed_record.map(lambda d: json.dumps(d).encode()), min_size=1, max_size=30))  # big ints too
def test_typed_and_dict_readings_agree(lines: list[bytes]) -> None:
    """A batch msgspec decodes whole (numbers are numbers) and the same lines in a batch that has to take the
    dict path (a trailing broken line) give the same positions, statics and dead letters, details included."""
    typed = run(lines)
    both = run([*lines, b"{broken"])
    assert both.dead[-1].reason == "unparseable"
    both.dead.pop()
    both.counts.dead_letter -= 1
    both.counts.input_lines -= 1
    both.counts.dead_letter_reasons["unparseable"] -= 1
    if not both.counts.dead_letter_reasons["unparseable"]:
        del both.counts.dead_letter_reasons["unparseable"]
    assert _as_tuple(typed) == _as_tuple(both)


@pytest.mark.parametrize(
    "last",
    [
        b'{"id":"413000009","ts":1717200009,"lon":106.5,"lat":29.5,"heading":91.0,"receiver":"rx-7","kind":"vessel"}',
        b'{"id":"413000009","ts":1717200009,"lon":106.5,"lat":29.5,"\\u0068eading":91.0,"\\u0072eceive\\u0072":"rx-7"}',
        b'{"id":"413000009","ts":1717200009,"lon":106.5,"lat":29.5}',
    ],
    ids=["keys-in-last-line", "escaped-keys", "keys-absent"],
)
def test_fields_absent_from_most_lines_are_read_where_present(last: bytes) -> None:
    """The typed reading leaves out fields no line of a batch holds (a key's character missing from the whole
    batch proves it). Keys present in one line only, or spelt with escapes, are still read: the batch gives
    what the same lines give each alone on the dict path (a broken line sends that batch there)."""
    lines = [b'{"id":"4130000%02d","ts":%d,"lon":106.5,"lat":29.5,"sog":3.5}' % (k, T0 + k) for k in range(9)]
    lines.append(last)
    typed = run(lines)
    assert typed.counts.dead_letter == 0
    for k, line in enumerate(lines):
        alone = run([line, b"{broken"])
        p, q = typed.positions, alone.positions
        assert p.subject_id[k] == q.subject_id[0]
        assert np.array_equal(p.heading_deg[k : k + 1], q.heading_deg[:1], equal_nan=True)
        assert np.array_equal(p.sog_kn[k : k + 1], q.sog_kn[:1], equal_nan=True)
        assert p.receiver[k] == q.receiver[0]
        assert p.kind[k] == q.kind[0]
    if b"eading" in last:
        assert typed.positions.heading_deg[-1] == 91.0
        assert typed.positions.receiver[-1] == "rx-7"
        assert np.isnan(typed.positions.heading_deg[:-1]).all()


@pytest.mark.parametrize("bad", [b"-5", b"5e20", b"null", b'"2024-06-01T00:00:09Z"', b"1717200009123"])
def test_epoch_number_batches_read_like_the_dict_path(bad: bytes) -> None:
    """Epoch-number times go straight into a float array; a batch with a missing, out-of-range or text time is
    read the general way, so its positions and dead letters (values shown as written) are those of the dict path."""
    lines = [b'{"id":"4130000%02d","ts":%d,"lon":106.5,"lat":29.5}' % (k, T0 + k) for k in range(9)]
    lines.append(b'{"id":"413000009","ts":' + bad + b',"lon":106.5,"lat":29.5}')
    typed = run(lines)
    both = run([*lines, b"{broken"])
    both.dead.pop()
    assert [(d.line, d.reason, d.detail) for d in typed.dead] == [(d.line, d.reason, d.detail) for d in both.dead]
    assert np.array_equal(typed.positions.ts_s, both.positions.ts_s)
    if bad == b"-5":
        assert typed.dead[0].detail.startswith("time -5 ")
    if bad == b"1717200009123":  # milliseconds
        assert typed.positions.ts_s[-1] == 1717200009.123


@pytest.mark.parametrize("where", [0, 1, 2])
def test_an_empty_id_anywhere_in_a_batch_is_missing_and_an_id_holding_nul_is_not(where: int) -> None:
    """The all-strings check on a batch's ids also finds empty ones from the NUL-joined ids: at either end too."""
    lines = [rec(id="1"), rec(id="2"), rec(id="3\x00")]
    lines[where] = rec(id="")
    result = run(lines)
    assert [(d.line, d.reason) for d in result.dead] == [(where + 1, "missing_field")]
    want = [x for k, x in enumerate(["1", "2", "3\x00"]) if k != where]
    assert result.positions.subject_id.tolist() == want


def _number_text(draw: st.DrawFn) -> bytes:
    """A JSON number as feeds write them: Python's repr, fixed or exponent notation, integers of any size."""
    x = draw(st.floats(-1e6, 1e6, allow_nan=False) | st.floats(allow_nan=False, allow_infinity=False))
    form = draw(st.sampled_from(["repr", "fixed", "exp", "int", "bigint", "zero", "-0"]))
    if form == "-0":  # msgspec reads the integer -0 as 0.0, and -0.0 as -0.0
        return draw(st.sampled_from([b"-0", b"-0.0"]))
    if form == "repr":
        return repr(x).encode()
    if form == "fixed":
        return f"{x:.{draw(st.integers(0, 20))}f}".encode()
    if form == "exp":
        return f"{x:.{draw(st.integers(0, 20))}{draw(st.sampled_from('eE'))}}".encode()
    if form == "int":
        return str(draw(st.integers(-(2**70), 2**70))).encode()
    if form == "bigint":
        return str(draw(st.integers(2**52, 2**64))).encode()
    return draw(st.sampled_from([b"0", b"0.0", b"0e5", b"-0E-3", b"1e-400", b"1e22", b"1e23"]))


@st.composite
def _flat_line(draw: st.DrawFn) -> bytes:
    """A flat JSON object as the compiled scan reads it (mostly), in any key order and spacing."""
    sp = draw(st.sampled_from([b"", b" ", b"\t", b" \r "]))
    members: list[tuple[bytes, bytes]] = [
        (b"id", draw(st.sampled_from([b'"413000001"', b'"CSQU3054383"', b'"a b"', b'""', b"413000002", b"0"]))),
        (b"ts", draw(st.sampled_from([b"%d" % T0, b"%d.25" % T0, b"%de-3" % (T0 * 1000), b"%d123" % T0]))),
    ]
    if draw(st.integers(0, 3)) == 0:  # text times
        members[1] = (b"ts", draw(st.sampled_from([b'"2024-06-01T00:00:00Z"', b'"2024-06-01 00:00:07"', b'"x"'])))
    for key, values in (
        (b"kind", [b'"vessel"', b'"container"', b'"boat"', b"null", b"3"]),
        (b"receiver", [b'"rx-1"', b'""', b"null", b"17"]),
        (b"type", [b"1", b"5", b"8", b'"static"', b"null", b"123456789012345678"]),
    ):
        if draw(st.integers(0, 2)) == 0:
            members.append((key, draw(st.sampled_from(values))))
    for key in (b"lon", b"lat", b"sog", b"cog", b"heading"):
        if draw(st.booleans()):
            members.append((key, b"null" if draw(st.integers(0, 9)) == 0 else _number_text(draw)))
    for key, values in (
        (b"name", [b'"CHANGJIANG 1"', b'"a\\"b\\\\c\\u0041\\/\\t"', b"null", '"长江 \u00e9"'.encode()]),
        (b"imo", [b"9074729", b"null", b'"\xff"']),  # msgspec leaves a skipped value's UTF-8 unchecked
        (b"extra", [b"true", b"false", b"null", b"12.5e3", b'"x"']),
        (b"carrier", [b'"413000001"', b"null"]),
    ):
        if draw(st.booleans()):
            members.append((key, draw(st.sampled_from(values))))
    members = draw(st.permutations(members))
    body = (sp + b"," + sp).join(b'"' + k + b'"' + sp + b":" + sp + v for k, v in members)
    return sp + b"{" + sp + body + sp + b"}" + draw(st.sampled_from([b"\n", b"\r\n", b"", b" \n"]))


def _without_scan(lines: list[bytes]) -> DecodeResult:
    dec = JsonlDecoder("test.jsonl")
    dec._scan = None
    return DecodeResult.concat([dec.feed(lines, 1), dec.close()])


@settings(max_examples=300, deadline=None)
@given(st.lists(_flat_line(), min_size=1, max_size=20))
def test_compiled_scan_reads_flat_lines_as_msgspec_does(lines: list[bytes]) -> None:
    """The compiled scan of flat lines (numbers straight into columns) gives what the typed msgspec path gives,
    value for value (signed zeros, long mantissas and big integers included), and it does read these lines."""
    dec = JsonlDecoder("test.jsonl")
    assert dec._scan is not None
    scanned = dec._scan(lines, 1 << 20)
    fast = DecodeResult.concat([dec.feed(lines, 1), dec.close()])
    slow = _without_scan(lines)
    assert _as_tuple(fast) == _as_tuple(slow)
    for f in ("ts_s", "lon_deg", "lat_deg", "sog_kn", "cog_deg", "heading_deg"):  # -0.0 vs 0.0 too
        assert np.signbit(getattr(fast.positions, f)).tolist() == np.signbit(getattr(slow.positions, f)).tolist()
    flat = JsonlDecoder("test.jsonl")._flat_columns(lines, 1)
    if flat is not None:  # the text columns hold the same values, of the same types (3 stays an int)
        other = JsonlDecoder("test.jsonl")
        other._scan = None
        typed = other._typed_columns(lines, 1)
        assert typed is not None
        for name in ("id", "ts", "kind", "receiver", "msg_type"):
            if name == "ts" and "ts" in flat.numbers:  # text times the time parser read from the bytes
                want_s, status = TimeParser().parse(typed.values["ts"]) if "ts" in typed.values else (None, None)
                assert status is None or (status == 0).all()
                if want_s is not None:
                    assert flat.numbers["ts"].tolist() == want_s.tolist()
                continue
            got, want = flat.values.get(name), typed.values.get(name)
            if name == "id" and want is not None:  # an integer id is given as its text (str(int) downstream)
                want = [str(v) if type(v) is int else v for v in want]
            assert got == want and [type(v) for v in got or []] == [type(v) for v in want or []], name
    values = [v for line in lines for v in json.loads(line.decode("utf-8", "replace")).values()]
    huge = any(isinstance(v, float) and math.isinf(v) for v in values)  # msgspec refuses: the scan declines
    assert (scanned is None) == huge


@pytest.mark.parametrize(
    "line",
    [
        b'{"id":"413000001","ts":"2024-06-01T00:00:00Z","lon":106.5,"lat":29.5}',  # text and number times mixed
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"kind":1.5}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"kind":"\xc3\xa9"}',  # kept text beyond ASCII
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"x":"\\q"}',  # escapes msgspec refuses
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"x":"\\u12"}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"x":"\\ud800"}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"x":"a\tb"}',  # a raw control character
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"\\u006bind":"vessel"}',  # an escaped key
        b'{"id":null,"ts":1717200000,"lon":106.5,"lat":29.5}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"lon":106.6}',  # a key twice
        b'{"id":"413000001","ts":1717200000,"lon":"106.5","lat":29.5}',  # a string number
        b'{"id":"413000001","ts":1717200000,"lon":true,"lat":29.5}',
        b'{"id":"413000001","ts":1717200000,"lon":NaN,"lat":29.5}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,"x":{"a":1}}',  # nested
        b'{"id":"41300\\u00301","ts":1717200000,"lon":106.5,"lat":29.5}',  # an escape in the id
        b'{"id":"\xe9","ts":1717200000,"lon":106.5,"lat":29.5}',  # beyond ASCII
        b'{"id":-5,"ts":1717200000,"lon":106.5,"lat":29.5}',
        b'{"id":1.5,"ts":1717200000,"lon":106.5,"lat":29.5}',
        b'{"id":1234567890123456789,"ts":1717200000,"lon":106.5,"lat":29.5}',
        b'{"ts":1717200000,"lon":106.5,"lat":29.5}',  # no id
        b'{"id":"413000001","ts":1717200000,"lon":01,"lat":29.5}',
        b'{"id":"413000001","ts":1717200000,"lon":1.,"lat":29.5}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5,}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5} x',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":29.5}{"id":"2"}',
        b'{"id":"413000001","ts":1717200000,"lon":106.5,"lat":1e999}',
        b"",
        b"[1]",
    ],
)
def test_compiled_scan_declines_what_it_does_not_read_exactly(line: bytes) -> None:
    """Lines outside the scan's grammar make it decline the whole batch; the other paths then read it, so the
    result is the one without the scan (dead letters included)."""
    good = b'{"id":"413000002","ts":1717200001,"lon":106.5,"lat":29.5}'
    lines = [good, line, good]
    dec = JsonlDecoder("test.jsonl")
    assert dec._flat_columns([good, good], 1) is not None
    assert dec._flat_columns(lines, 1) is None
    assert _as_tuple(run(lines)) == _as_tuple(_without_scan(lines))


@pytest.mark.parametrize("flat", [True, False], ids=["scan", "msgspec"])
def test_invalid_utf8_in_a_skipped_field_is_dead_lettered_not_a_crash(flat: bool) -> None:
    """msgspec does not check the bytes of a value it skips, so the name of a static line could hold invalid
    UTF-8 until the builder asked for it, and then the decode raised. Such a batch takes the dict path:
    the line is dead-lettered as unparseable and the rest of the batch is read."""
    good = rec(ts=T0) if flat else rec()
    bad = b'{"id":"413000001","ts":%d,"type":"static","name":"\xff\xfe"}' % T0
    result = run([good, bad, good])
    assert [(d.line, d.reason) for d in result.dead] == [(2, "unparseable")]
    assert len(result.positions) == 2
