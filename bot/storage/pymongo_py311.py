"""On Python 3.11, PyMongo's topology lock can stay held for ever after a cancellation.

PyMongo waits on its conditions (server selection, the pool) with `asyncio.wait_for`. On 3.11
that runs the wait in a task of its own, and a caller cancelled while that task re-acquires the
lock returns without it: the task then takes the lock and nobody releases it, so every later
operation of the client waits for ever. Seen here: a news sender cancelled during a database
outage left the worker unable to reach the database once it was back. Python 3.12's `wait_for`
runs the wait in the caller's task, which cannot orphan the lock; this gives 3.11 the same.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

import pymongo.lock

T = TypeVar("T")


async def wait_in_caller_task(awaitable: Awaitable[T], timeout: float | None) -> T:
    """`asyncio.wait_for` as Python 3.12 has it: no task of its own."""
    async with asyncio.timeout(timeout):
        return await awaitable


def install() -> None:
    if sys.version_info < (3, 12):
        pymongo.lock.wait_for = wait_in_caller_task  # type: ignore[attr-defined,assignment]
