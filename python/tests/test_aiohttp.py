"""aiohttp (Debian's python3-aiohttp) server and client on ringlet's loop, both backends: a real framework's use
of transports, streams, timers and executors. Skipped when aiohttp is not installed."""

import asyncio

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

WATCHDOG = 10.0


def test_aiohttp_server_and_client(loop):
    async def hello(request):
        return web.Response(text="Hello, " + request.match_info.get("name", "world"))

    async def echo(request):
        return web.Response(body=await request.read())

    async def main():
        app = web.Application()
        app.add_routes([web.get("/", hello), web.get("/{name}", hello), web.post("/echo", echo)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(base + "/") as r:
                    assert r.status == 200 and await r.text() == "Hello, world"
                texts = await asyncio.gather(*(fetch(session, f"{base}/n{i}") for i in range(20)))
                assert texts == [f"Hello, n{i}" for i in range(20)]
                body = bytes(range(256)) * 1000
                async with session.post(base + "/echo", data=body) as r:
                    assert await r.read() == body
        finally:
            await runner.cleanup()

    async def fetch(session, url):
        async with session.get(url) as r:
            return await r.text()

    loop.run_until_complete(asyncio.wait_for(main(), WATCHDOG))
