"""BackgroundServer (the loop behind `Proxy`, `use_cassette` and the plugin's proxy) closes its loop as
asyncio.run does: what the app left running is cancelled and finishes before the loop closes."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from pytest_seedreplay.proxy.serve import BackgroundServer


def test_a_task_the_app_left_running_is_cancelled_and_finishes_before_the_loop_closes() -> None:
    started, finished = threading.Event(), threading.Event()

    async def timer() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: only a cancel ends it
        finally:
            finished.set()

    TIMER = web.AppKey("timer", asyncio.Task)

    async def start_timer(app: web.Application) -> None:
        app[TIMER] = asyncio.get_running_loop().create_task(timer())  # an app's own timer, never awaited

    def factory() -> web.Application:
        app = web.Application()
        app.on_startup.append(start_timer)
        return app

    server = BackgroundServer(factory)
    server.start()
    assert started.wait(10)
    server.stop()
    assert finished.is_set()  # its `finally` ran: the task was cancelled, not dropped when the loop closed
    assert server._loop is not None and server._loop.is_closed()
