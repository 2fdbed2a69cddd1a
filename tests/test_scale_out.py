"""Scale-out: two web processes and one worker on one database, behind a round-robin balancer.

One user's webhooks land on both web processes (every event is delivered twice, once to each,
as LINE's redelivery may do, and again later on purpose); the per-user lease and the unique
`webhookEventId` (`bot/line/pipeline.py`) must still handle each event once and in order: the
replies of an order-dependent conversation arrive in order, once each.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.devdb import free_port
from bot.emulator.app import create_emulator_app
from bot.storage import Mongo, Storage
from tests.conftest import ROOT, make_env
from tests.stack import message_texts

pytestmark = pytest.mark.slow

# Each answer depends on the one before: handled out of order, 「気仙沼」 would not be understood.
TURNS = [
    ("登録", "登録したい市町村名"),
    ("気仙沼", "宮城県気仙沼市"),
    ("キャンセル", "中止しました"),
    ("登録", "登録したい市町村名"),
    ("南魚沼", "新潟県南魚沼市"),
    ("キャンセル", "中止しました"),
]


@dataclass
class RoundRobin:
    """A load balancer in front of the web processes. A new event goes to the next process in
    turn; each repeat of an event (a redelivery) to the process after the one that got it last."""

    backends: list[str] = field(default_factory=list)
    deliveries: dict[str, list[int]] = field(default_factory=dict)  # event → backends, in order

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        event_id = str(json.loads(body)["events"][0]["webhookEventId"])
        seen = self.deliveries.setdefault(event_id, [])
        index = (seen[-1] + 1 if seen else len(self.deliveries) - 1) % len(self.backends)
        seen.append(index)
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-line")}
        headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.backends[index]}/callback", data=body, headers=headers) as answer,
        ):
            return web.Response(status=answer.status, body=await answer.read())


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            env={**env, "PATH": os.environ["PATH"]},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _healthy(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 45
    while True:
        assert proc.poll() is None, f"{url} exited with {proc.returncode}"
        try:
            async with http.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"{url} not healthy within 45 s"
        await asyncio.sleep(0.2)


@dataclass
class Cluster:
    http: aiohttp.ClientSession
    emulator: str
    balancer: RoundRobin
    storage: Storage

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.emulator}{path}", json=body) as response:
            data = await response.json()
            assert response.status == 200, data
            return data

    async def inbox(self, user_id: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (
            await self.call("GET", f"/_emulator/users/{user_id}/inbox")
        )["messages"]
        return messages


@pytest.fixture
async def cluster(mongo_uri: str, db_name: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    balancer = RoundRobin()
    lb_app = web.Application()
    lb_app.router.add_post("/callback", balancer.forward)
    lb = TestServer(lb_app, host="127.0.0.1")
    await lb.start_server()
    env = make_env(mongo_uri, db_name)
    emulator = TestServer(
        create_emulator_app(
            channel_secret=env["LINE_CHANNEL_SECRET"],
            access_token=env["LINE_CHANNEL_ACCESS_TOKEN"],
            webhook_url=str(lb.make_url("/callback")),
        ),
        host="127.0.0.1",
    )
    await emulator.start_server()
    emulator_url = str(emulator.make_url("")).rstrip("/")
    env["LINE_API_BASE_URL"] = emulator_url
    ports = [free_port(), free_port()]
    balancer.backends = [f"http://127.0.0.1:{port}" for port in ports]
    procs = [
        _start(env, tmp_path / f"web{i}.log", "serve", "--host", "127.0.0.1", "--port", str(port))
        for i, port in enumerate(ports)
    ]
    procs.append(_start(env, tmp_path / "worker.log", "worker"))
    mongo = Mongo(mongo_uri, db_name)
    try:
        async with aiohttp.ClientSession() as http:
            for url, proc in zip(balancer.backends, procs, strict=False):
                await _healthy(http, url, proc)
            storage = Storage(mongo)
            yield Cluster(http, emulator_url, balancer, storage)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for i in range(2):
            print(f"--- web{i}.log (tail)\n", (tmp_path / f"web{i}.log").read_text()[-3000:])
        await mongo.close()
        await emulator.close()
        await lb.close()


async def _wait_for(cluster: Cluster, user_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while len(entries := await cluster.inbox(user_id)) < count:
        assert time.monotonic() < deadline, f"{len(entries)} of {count} messages after 30 s"
        await asyncio.sleep(0.1)
    return entries


async def test_one_users_events_over_two_web_processes_are_handled_once_in_order(
    cluster: Cluster,
) -> None:
    # Every event goes out twice at once: first delivery and redelivery, to both processes.
    await cluster.call("POST", "/_emulator/config", {"redeliver": True})
    user_id = (await cluster.call("POST", "/_emulator/users", {"displayName": "分散"}))["userId"]
    await cluster.call("POST", f"/_emulator/users/{user_id}/follow")
    await _wait_for(cluster, user_id, 1)  # the greeting

    event_ids = []
    for text, _ in TURNS:  # back to back, as fast as LINE would deliver them
        sent = await cluster.call("POST", f"/_emulator/users/{user_id}/text", {"text": text})
        assert sent["status"] == 200
        event_ids.append(sent["webhookEventId"])

    await _wait_for(cluster, user_id, 1 + len(TURNS))
    await asyncio.sleep(1.5)  # anything handled twice would arrive by now
    entries = await cluster.inbox(user_id)
    replies = [" ".join(message_texts([entry["message"]])) for entry in entries[1:]]
    assert len(replies) == len(TURNS), replies
    for (text, expected), reply in zip(TURNS, replies, strict=True):
        assert expected in reply, (text, reply)
    # Consecutive events first reached different processes, and each reached both: the order
    # above was kept across them.
    firsts = [cluster.balancer.deliveries[event_id][0] for event_id in event_ids]
    assert all(a != b for a, b in itertools.pairwise(firsts)), firsts
    for event_id in event_ids:
        assert set(cluster.balancer.deliveries[event_id]) == {0, 1}

    # LINE redelivers again later, to whichever process: nothing is handled a second time.
    again = await asyncio.gather(
        *(cluster.call("POST", f"/_emulator/webhooks/{eid}/redeliver") for eid in event_ids)
    )
    assert {answer["status"] for answer in again} == {200}
    await asyncio.sleep(2)
    assert len(await cluster.inbox(user_id)) == len(entries)
    stats = await cluster.call("GET", "/_emulator/stats")
    reply_calls = stats["requests"]["/v2/bot/message/reply"]
    assert reply_calls == {"200": 1 + len(TURNS)}
    assert "/v2/bot/message/push" not in stats["requests"]
    for event_id in event_ids:
        stored = await cluster.storage.inbound_events.get(event_id)
        assert stored is not None and stored["status"] == "done"
