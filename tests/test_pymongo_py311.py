"""PyMongo's lock stays usable when a task waiting on one of its conditions is cancelled while
re-acquiring the lock (on Python 3.11 `asyncio.wait_for` orphaned it: `bot.storage.pymongo_py311`).
Uses PyMongo's own lock, condition and wait."""

from __future__ import annotations

import asyncio

from pymongo.lock import _async_cond_wait, _async_create_condition, _async_create_lock

import bot.storage.db  # noqa: F401  (installs the fix, as every process does)


async def test_a_wait_cancelled_while_it_takes_the_lock_back_leaves_the_lock_free() -> None:
    lock = _async_create_lock()
    condition = _async_create_condition(lock)
    entered = asyncio.Event()

    async def select_server() -> None:  # the shape of PyMongo's server-selection loop
        async with lock:
            entered.set()
            await _async_cond_wait(condition, 0.05)

    waiter = asyncio.create_task(select_server())
    await entered.wait()
    await lock.acquire()  # another task holds the lock when the wait times out
    await asyncio.sleep(0.2)
    waiter.cancel()  # the waiter is cancelled while it waits to take the lock back...
    lock.release()  # ...and the lock is handed on in the same instant
    done, _ = await asyncio.wait([waiter], timeout=2)
    assert waiter in done and waiter.cancelled()
    await asyncio.sleep(0.05)  # whatever was still waiting for the lock has run
    assert not lock.locked()  # nobody is left holding it: a later operation can take it
