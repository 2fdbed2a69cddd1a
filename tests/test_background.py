"""Retrying loops stop when cancelled, even when a library turns the cancellation into an error
of its own (as PyMongo does mid-read)."""

from __future__ import annotations

import asyncio

from bot.background import stop_if_cancelled


class Converted(Exception):
    """What PyMongo raises when a cancellation reaches it mid-read (AutoReconnect)."""


async def read_that_converts_cancellation() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise Converted("connection closed") from None


async def retrying(tries: list[int]) -> None:
    while True:
        try:
            await read_that_converts_cancellation()
        except Converted:
            stop_if_cancelled()
            tries.append(1)
            await asyncio.sleep(0.01)


async def test_a_retrying_loop_stops_when_cancelled() -> None:
    tries: list[int] = []
    task = asyncio.create_task(retrying(tries))
    await asyncio.sleep(0.05)
    task.cancel()
    # Without the check the loop would take the converted cancellation for an error and retry.
    done, _ = await asyncio.wait({task}, timeout=1.0)
    assert done == {task} and task.cancelled() and tries == []
