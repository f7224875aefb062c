"""Micro-batching of live line chunks: emit when ``max_lines`` are collected or ``max_delay_s`` after the first.

File sources produce full batches directly; live sources (TCP, UDP, Kafka,
stdin) trickle lines in, and a record must not wait longer than the delay
(50 ms by default) for its batch to fill. The pump reading the source puts
chunks into a one-slot queue, so when the downstream stage stops taking batches
the pump stops reading: backpressure reaches the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from typing import Any, TypeVar

__all__ = ["micro_batches"]

T = TypeVar("T")
_END = object()


async def micro_batches(
    chunks: AsyncIterable[Sequence[T]], *, max_lines: int, max_delay_s: float = 0.05
) -> AsyncGenerator[list[T], None]:
    """Re-chunk ``chunks`` into lists of at most ``max_lines`` items, each emitted no later than
    ``max_delay_s`` after its first item arrived (an idle source emits nothing).

    Parameters
    ----------
    chunks
        Async iterable of item sequences (e.g. raw lines as they arrive).
    max_lines
        Size bound of a batch (>= 1).
    max_delay_s
        Time bound, measured on the event loop's monotonic clock.
    """
    if max_lines < 1:
        raise ValueError(f"max_lines={max_lines} must be >= 1")
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        # Not try/finally: on cancellation the queue may be full and nobody would take _END.
        async for chunk in chunks:
            if chunk:
                await queue.put(chunk)
        await queue.put(_END)

    task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    batch: list[T] = []
    deadline: float | None = None
    # One pending get() survives a timeout: asyncio.wait(timeout=...) never cancels it, so a chunk taken
    # off the queue at the moment the deadline fires is not lost (wait_for would cancel and drop it).
    getter: asyncio.Future[object] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            waitables: set[asyncio.Future[Any]] = {getter}
            if not task.done():
                waitables.add(task)
            elif task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(waitables, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                if task in done:
                    continue  # the pump ended: its error is raised above, or its _END is in the queue
                out, batch, deadline = batch, [], None  # the time bound: emit what there is
                yield out
                continue
            item = getter.result()
            getter = None
            if item is _END:
                break
            seq: Sequence[T] = item  # type: ignore[assignment]
            start = 0
            while start < len(seq):
                if not batch:
                    deadline = loop.time() + max_delay_s
                take = max_lines - len(batch)
                batch.extend(seq[start : start + take])
                start += take
                if len(batch) >= max_lines:
                    out, batch, deadline = batch, [], None
                    yield out
        if batch:
            yield batch
        await task  # re-raise a source error
    finally:
        if getter is not None:
            getter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
