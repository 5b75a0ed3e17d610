"""The proxy's threads hand the GIL back to its loop quickly: the switch interval is lowered once a
store thread starts, and one set lower already is kept."""

import asyncio
import sys

import pytest

from pytest_seedreplay.proxy.shared_flight import StoreThreads
from pytest_seedreplay.proxy.writer import LOOP_SWITCH_INTERVAL, StoreWriter


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


def test_the_store_thread_lowers_the_switch_interval(interval):
    sys.setswitchinterval(0.005)  # Python's default
    assert asyncio.run(_one_write(StoreWriter())) == "written"
    assert sys.getswitchinterval() == pytest.approx(LOOP_SWITCH_INTERVAL)


def test_the_flight_threads_lower_it_too(interval):
    sys.setswitchinterval(0.005)
    assert asyncio.run(_one_flight_call(StoreThreads())) == "claimed"
    assert sys.getswitchinterval() == pytest.approx(LOOP_SWITCH_INTERVAL)


def test_an_interval_set_lower_is_kept(interval):
    sys.setswitchinterval(LOOP_SWITCH_INTERVAL / 5)
    asyncio.run(_one_write(StoreWriter()))
    assert sys.getswitchinterval() == pytest.approx(LOOP_SWITCH_INTERVAL / 5)
