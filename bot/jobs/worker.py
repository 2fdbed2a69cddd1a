"""`python -m bot worker`: APScheduler in Japan time, one instance of each job at a time."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import JST, Clock
from bot.jobs.cleanup import remove_expired
from bot.line.pipeline import Pipeline
from bot.services import HandlerFactory, make_pipeline, open_services
from bot.settings import Settings
from bot.storage import Storage

log = logging.getLogger("bot.worker")

Job = Callable[[], Awaitable[object]]


class Worker:
    """Runs the jobs; on shutdown lets running jobs finish before closing clients."""

    def __init__(self, storage: Storage, clock: Clock, pipeline: Pipeline) -> None:
        self.storage = storage
        self.clock = clock
        self.pipeline = pipeline
        self.scheduler = AsyncIOScheduler(timezone=JST)
        self.running: set[asyncio.Task[Any]] = set()

    def every(self, interval: timedelta, job: Job, name: str) -> None:
        self.scheduler.add_job(
            self._tracked(job, name),
            "interval",
            seconds=interval.total_seconds(),
            id=name,
            max_instances=1,
            coalesce=True,
            next_run_time=self.clock.now_jst(),
        )

    def _tracked(self, job: Job, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.running.add(task)
            try:
                await job()
            except Exception:
                log.exception("job failed", extra={"job": name})
            finally:
                if task is not None:
                    self.running.discard(task)

        return run

    def add_standard_jobs(self) -> None:
        self.every(
            timedelta(minutes=5), lambda: remove_expired(self.storage, self.clock), "cleanup"
        )

    async def run_until(self, stop: asyncio.Event) -> None:
        self.scheduler.start()
        log.info("worker started", extra={"jobs": [j.id for j in self.scheduler.get_jobs()]})
        await stop.wait()
        log.info("worker stopping: waiting for running jobs")
        self.scheduler.shutdown(wait=False)
        if self.running:
            await asyncio.wait(self.running, timeout=60)


async def run_worker(settings: Settings, handler_factory: HandlerFactory | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    clock = Clock()
    async with open_services(settings, clock) as services:
        # The sweep may answer residents, and answers may change their rich menu.
        services.richmenus.start()
        worker = Worker(services.storage, clock, make_pipeline(services, handler_factory))
        worker.add_standard_jobs()
        try:
            await worker.run_until(stop)
        finally:
            await services.richmenus.stop()
