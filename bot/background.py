"""Background loops that retry on errors, and stopping them.

A loop that catches errors to try again must still stop when its task is cancelled. PyMongo
catches a cancellation that reaches it mid-read, closes the connection and raises its own
`AutoReconnect` instead, so the loop sees an ordinary error and would retry for ever, and
whoever awaits the cancelled task (a shutdown) would wait for ever.
"""

from __future__ import annotations

import asyncio


def cancelling() -> bool:
    """Whether the current task was asked to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancelled() -> None:
    """Raise `CancelledError` when the current task was asked to stop (call it where a loop
    catches an error to retry)."""
    if cancelling():
        raise asyncio.CancelledError
