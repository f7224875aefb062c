"""Webhook sink: retries, backoff and disk spool against a local aiohttp server on 127.0.0.1.

Acceptance: the endpoint is down for 30 s (``GEOFENCE_WEBHOOK_DOWN_S`` overrides it for
quick local runs); every alert line still arrives, and after dedupe by (alert_id,
status, ts) none arrives twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from streams.runner import FileInput, run
from streams.sinks import JsonlSink, WebhookSink
from tests.fakes import FakeEngine, fake_decoder_factory, read_triples, write_track_jsonl

DOWN_S = float(os.environ.get("GEOFENCE_WEBHOOK_DOWN_S", "30"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HookServer:
    """A webhook endpoint that can be down, answer errors, or fail after storing (forcing a redelivery)."""

    def __init__(self, port: int, *, errors: list[int] | None = None, fail_after_store: int = 0) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.errors = list(errors or [])  # statuses answered (without storing) to the first requests
        self.fail_after_store = fail_after_store
        self.lines: list[bytes] = []
        self.requests = 0
        self.content_types: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        self.content_types.add(request.content_type)
        if self.errors:
            return web.Response(status=self.errors.pop(0))
        if request.content_type == "application/json":
            self.lines.extend(orjson.dumps(x) for x in orjson.loads(body))
        else:
            self.lines.extend(x for x in body.splitlines() if x)
        if self.fail_after_store:
            self.fail_after_store -= 1
            return web.Response(status=500)
        return web.Response(status=204)

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def triples(self) -> list[tuple[str, str, str]]:
        return [(o["alert_id"], o["status"], o["ts"]) for o in map(orjson.loads, self.lines)]


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "track.jsonl"
    write_track_jsonl(path, subjects=30, steps=150, seed=11)
    return path


async def _run_with_hook(track: Path, tmp: Path, hook: WebhookSink) -> list[tuple[str, str, str]]:
    ref = tmp / "ref.jsonl"
    await run(
        [FileInput(track)], fake_decoder_factory, FakeEngine(), [JsonlSink(ref), hook], batch_size=200, stats_every_s=0
    )
    return read_triples(ref)


def _sink(url: str, spool: Path, **kw: float | str) -> WebhookSink:
    opts: dict[str, float | str] = {
        "backoff_base_s": 0.05,
        "backoff_cap_s": 1.0,
        "timeout_s": 2.0,
        "drain_timeout_s": 20.0,
    }
    opts.update(kw)
    return WebhookSink(url, spool_dir=spool, **opts)  # type: ignore[arg-type]


async def _down_for(server: HookServer, down_s: float, tmp: Path, track: Path) -> None:
    """Run the pipeline while ``server`` is down for ``down_s`` from the start; check exactly-once arrival."""

    async def come_back() -> None:
        await asyncio.sleep(down_s)
        await server.up()

    back = asyncio.create_task(come_back())
    hook = _sink(server.url, tmp / "spool", drain_timeout_s=down_s + 30)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        expected = await _run_with_hook(track, tmp, hook)
    finally:
        await back
        await server.down()
    assert loop.time() - t0 >= down_s
    assert hook.spooled_batches > 0 and hook.posts_failed > 0
    assert Counter(server.triples()) == Counter(expected)  # every line, none twice
    assert not list((tmp / "spool").glob("*.ndjson"))


@pytest.mark.slow
async def test_endpoint_down_for_30_s_loses_nothing_and_duplicates_nothing(track: Path, tmp_path: Path) -> None:
    await _down_for(HookServer(_free_port()), DOWN_S, tmp_path, track)


async def test_endpoint_down_briefly(track: Path, tmp_path: Path) -> None:
    await _down_for(HookServer(_free_port()), 1.5, tmp_path, track)


async def test_errors_and_lost_acknowledgements_are_retried_and_dedupe_by_triple(track: Path, tmp_path: Path) -> None:
    server = HookServer(_free_port(), errors=[503, 502, 429, 408], fail_after_store=2)
    await server.up()
    try:
        hook = _sink(server.url, tmp_path / "spool")
        expected = await _run_with_hook(track, tmp_path, hook)
    finally:
        await server.down()
    got = server.triples()
    assert set(got) == set(expected)
    assert len(got) > len(set(got))  # the two unacknowledged batches were redelivered...
    by_key: dict[tuple[str, str, str], bytes] = {}
    for t, line in zip(got, server.lines, strict=True):
        assert by_key.setdefault(t, line) == line  # ...as identical lines


async def test_spool_left_by_one_run_is_delivered_by_the_next(track: Path, tmp_path: Path) -> None:
    server = HookServer(_free_port())
    spool = tmp_path / "spool"
    hook = _sink(server.url, spool, drain_timeout_s=0.2)
    expected = await _run_with_hook(track, tmp_path, hook)  # endpoint never up: everything stays spooled
    assert list(spool.glob("*.ndjson")) and not server.lines
    await server.up()
    try:
        again = _sink(server.url, spool)
        await again.start()
        await again.close()
    finally:
        await server.down()
    assert Counter(server.triples()) == Counter(expected)
    assert not list(spool.glob("*.ndjson"))


async def test_rejected_batches_are_kept_not_retried_forever(tmp_path: Path) -> None:
    from geofence.alerts import Status
    from tests.fakes import make_alert as _alert

    server = HookServer(_free_port(), errors=[400])
    await server.up()
    try:
        hook = _sink(server.url, tmp_path / "spool", drain_timeout_s=5)
        await hook.start()
        await hook.write([_alert(Status.OPEN, 100.0)])
        await hook.flush()
        await hook.close()
    finally:
        await server.down()
    assert len(list((tmp_path / "spool" / "rejected").glob("*.ndjson"))) == 1
    assert server.requests == 1  # parked at once, never retried
    assert not list((tmp_path / "spool").glob("*.ndjson"))


async def test_json_array_body_format(track: Path, tmp_path: Path) -> None:
    server = HookServer(_free_port())
    await server.up()
    try:
        hook = _sink(server.url, tmp_path / "spool", body_format="json")
        expected = await _run_with_hook(track, tmp_path, hook)
    finally:
        await server.down()
    assert server.content_types == {"application/json"}
    assert Counter(server.triples()) == Counter(expected)


def test_backoff_is_exponential_capped_and_seeded(tmp_path: Path) -> None:
    plain = WebhookSink("http://127.0.0.1:1/", spool_dir=tmp_path, backoff_base_s=0.5, backoff_cap_s=4.0)
    assert [plain._delay_s(k) for k in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    a = WebhookSink("http://127.0.0.1:1/", spool_dir=tmp_path, jitter=0.5, seed=42)
    b = WebhookSink("http://127.0.0.1:1/", spool_dir=tmp_path, jitter=0.5, seed=42)
    da, db = [a._delay_s(k) for k in range(5)], [b._delay_s(k) for k in range(5)]
    assert da == db and all(0.5 * 2**k <= d <= 0.75 * 2**k + 1e-9 for k, d in enumerate(da[:4]))
