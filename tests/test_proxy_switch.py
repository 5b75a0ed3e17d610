"""The switch interval is the whole interpreter's: `seedreplay proxy`, in its own process, lowers it so
its threads hand the GIL back to its loop quickly; a proxy run inside someone else's process (the
pytest plugin, `Proxy`) leaves it as it found it."""

import asyncio
import sys

import pytest

from pytest_seedreplay.proxy.writer import LOOP_SWITCH_INTERVAL, StoreThreads, StoreWriter, switch_briskly


@pytest.fixture
def interval():
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


async def _one_write(writer: StoreWriter) -> str:
    try:
        return await writer.call(lambda: "written")
    finally:
        await writer.close()


async def _one_flight_call(threads: StoreThreads) -> str:
    try:
        return await threads.run(lambda: "claimed")
    finally:
        threads.close()


def test_the_proxy_threads_leave_the_host_process_interval_alone(interval):
    sys.setswitchinterval(0.005)  # Python's default
    assert asyncio.run(_one_write(StoreWriter())) == "written"
    assert asyncio.run(_one_flight_call(StoreThreads())) == "claimed"
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_switching_briskly_lowers_the_interval(interval):
    sys.setswitchinterval(0.005)
    switch_briskly()
    assert sys.getswitchinterval() == pytest.approx(LOOP_SWITCH_INTERVAL)


def test_an_interval_set_lower_is_kept(interval):
    sys.setswitchinterval(LOOP_SWITCH_INTERVAL / 5)
    switch_briskly()
    assert sys.getswitchinterval() == pytest.approx(LOOP_SWITCH_INTERVAL / 5)
