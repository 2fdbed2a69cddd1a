"""run_emulator: serves on its port, prints its URL, stops on cancel and on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time

import aiohttp
import pytest

from bot.devdb import free_port
from bot.emulator import run_emulator
from tests.test_emulator_support import AUTH, SECRET, TOKEN


async def wait_until_up(url: str, deadline_s: float = 10) -> int:
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url, headers=AUTH) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                assert time.monotonic() < deadline, f"{url} did not come up"
                await asyncio.sleep(0.05)


async def test_serves_until_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    task = asyncio.create_task(
        run_emulator(
            host="127.0.0.1",
            port=port,
            channel_secret=SECRET,
            access_token=TOKEN,
            webhook_url="http://127.0.0.1:9/callback",
        )
    )
    assert await wait_until_up(f"http://127.0.0.1:{port}/v2/bot/info") == 200
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert f"http://127.0.0.1:{port}/" in capsys.readouterr().out
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    code = (
        "import asyncio; from bot.emulator import run_emulator; "
        f"asyncio.run(run_emulator(host='127.0.0.1', port={port}, channel_secret='s', "
        "access_token='t', webhook_url='http://127.0.0.1:9/callback'))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert await wait_until_up(f"http://127.0.0.1:{port}/", deadline_s=30) == 200
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    printed = out.decode()
    assert printed.count("\n") == 1 and f"http://127.0.0.1:{port}/" in printed


async def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"cannot listen on 127.0.0.1:{port}"):
            await run_emulator(
                host="127.0.0.1",
                port=port,
                channel_secret=SECRET,
                access_token=TOKEN,
                webhook_url="http://127.0.0.1:9/callback",
            )
