"""`python -m bot worker`: APScheduler in Japan time, one instance of each job at a time."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import time, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import JST, Clock
from bot.domain.news import DeliveryConfig
from bot.jobs import activity_reminders as activity_jobs
from bot.jobs.benefit_notices import benefit_notices
from bot.jobs.cleanup import remove_expired
from bot.jobs.news import INTERVAL as NEWS_INTERVAL
from bot.jobs.news import news_job
from bot.jobs.recount import run_recount
from bot.jobs.reminders import reminder_job
from bot.jobs.snapshots import take_snapshots
from bot.line.pipeline import Pipeline
from bot.render import Renderer
from bot.services import HandlerFactory, make_pipeline, open_services
from bot.settings import Settings
from bot.storage import Storage

log = logging.getLogger("bot.worker")

Job = Callable[[], Awaitable[object]]


class Worker:
    """Runs the jobs; on shutdown lets running jobs finish before closing clients."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        pipeline: Pipeline,
        renderer: Renderer,
        news: DeliveryConfig | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.pipeline = pipeline
        # The process's renderer, with the municipalities' template overrides (`open_services`).
        self.renderer = renderer
        self.news = news or DeliveryConfig()
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

    def daily(
        self,
        at: time,
        job: Job,
        name: str,
        *,
        grace: timedelta = timedelta(hours=1),
        catch_up: bool = False,
    ) -> None:
        """Every day at `at`, Japan time; a run missed by less than `grace` still happens. With
        `catch_up`, a worker started within `grace` after `at` also runs the job at once (the
        job must be idempotent: the run it may have missed could have happened after all)."""
        self.scheduler.add_job(
            self._tracked(job, name),
            "cron",
            hour=at.hour,
            minute=at.minute,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(grace.total_seconds()),
        )
        now = self.clock.now_jst()
        last = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
        if last > now:
            last -= timedelta(days=1)
        if catch_up and now - last <= grace:
            self.scheduler.add_job(
                self._tracked(job, name), "date", run_date=now, id=f"{name}-catch-up"
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
        self.every(
            timedelta(minutes=5),
            reminder_job(self.storage, lambda: self.pipeline.line, self.renderer, self.clock),
            "garbage-reminders",
        )
        # 関係人口: yesterday's figures for the trend, then the nightly recount of the counters.
        self.daily(
            time(0, 5),
            lambda: take_snapshots(self.storage, self.clock),
            "stats-snapshots",
            grace=timedelta(hours=6),
            catch_up=True,
        )
        self.daily(time(3, 0), lambda: run_recount(self.storage, self.clock), "stats-recount")
        activity_jobs.schedule(self)  # 担い手活動 reminders, Premium renewals
        self.every(
            timedelta(minutes=1),
            lambda: benefit_notices(self.storage, self.clock, self.pipeline.line, self.renderer),
            "benefit-notices",
        )
        self.every(
            NEWS_INTERVAL,
            news_job(
                self.storage, self.clock, lambda: self.pipeline.line, self.renderer, self.news
            ),
            "news",
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
        worker = Worker(
            services.storage,
            clock,
            make_pipeline(services, handler_factory),
            services.renderer,
            settings.news,
        )
        worker.add_standard_jobs()
        try:
            await worker.run_until(stop)
        finally:
            await services.richmenus.stop()
