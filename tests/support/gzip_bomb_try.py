"""One webhook try against a receiver answering a gzip bomb, in a process of its own: prints
the try's outcome and the peak of Python memory it traced.

Run by tests/unit/test_event_delivery_bounds.py as `python -m tests.support.gzip_bomb_try`.
tracemalloc is started and stopped here, never in the test process: on CPython 3.11,
stopping it while another thread allocates (the test process has many: the Temporal SDK's,
uvicorn's) can crash the process (fixed in 3.12 and 3.13, gh-128679)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import tracemalloc

import httpx
from aiohttp import web

from activities import webhook_post
from dev.stack.procs import free_port
from vult.process.outbound import WebhookEndpoint

# An answer of 64 MB of zeros, gzip-encoded: about 64 KB on the wire.
INFLATED = 64 * 1024 * 1024
BOMB = gzip.compress(b"\0" * INFLATED, compresslevel=9)


async def one_try() -> dict[str, object]:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(
            status=500, body=BOMB, headers={"Content-Encoding": "gzip"}, content_type="text/plain"
        )

    async def small(_: web.Request) -> web.Response:
        return web.Response(status=500, text="no")

    app = web.Application()
    app.router.add_post("/hooks", answer)
    app.router.add_post("/warm", small)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    endpoint = WebhookEndpoint(name="shop", url=f"http://127.0.0.1:{port}/hooks", secret=secret)
    try:
        async with httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(10.0)) as c:
            # A first try at a small answer: what it imports and sets up is not the try's.
            warm = WebhookEndpoint(name="warm", url=f"http://127.0.0.1:{port}/warm", secret=secret)
            await webhook_post.post(c, warm, "evt_w", b"{}", 10.0, "test")
            tracemalloc.start()
            try:
                posted = await webhook_post.post(c, endpoint, "evt_x", b"{}", 10.0, "test")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        await runner.cleanup()
    return {"outcome": posted.outcome, "peak": peak, "wire": len(BOMB)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(one_try())))
