"""WorkQueue: dedup, one worker per key, delays, backoff and shutdown."""

from __future__ import annotations

import asyncio
import random

import pytest

from tidegate.runtime import Request, ShutDown, WorkQueue


def key(name: str) -> Request:
    return Request("default", name)


async def pending(queue: WorkQueue[Request], within: float = 0.05) -> Request | None:
    """The next key if one can be taken within `within` seconds, else None (nothing taken)."""
    try:
        return await asyncio.wait_for(queue.get(), within)
    except TimeoutError:
        return None


async def test_a_key_waits_once_however_often_it_is_added() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    for name in ["a", "b", "a", "a", "b", "c"]:
        queue.add(key(name))
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == [key("a"), key("b"), key("c")]
    assert await pending(queue) is None


async def test_a_key_added_while_processed_comes_back_after_done() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    queue.add(key("a"))
    taken = await queue.get()
    queue.add(key("a"))
    queue.add(key("a"))
    # Not handed to a second worker while the first still holds it...
    assert len(queue) == 0
    assert await pending(queue) is None
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    # ...but queued again (once) as soon as it is done.
    queue.done(taken)
    assert await asyncio.wait_for(waiting, 5) == key("a")
    queue.done(key("a"))
    assert await pending(queue) is None


async def test_done_without_a_new_add_does_not_requeue() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    queue.add(key("a"))
    queue.done(await queue.get())
    assert len(queue) == 0
    assert await pending(queue) is None


async def test_workers_never_hold_the_same_key_at_once() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    names = [key(f"k{i}") for i in range(5)]
    busy: set[Request] = set()
    overlaps: list[Request] = []
    clock = 0  # counts adds
    last_added: dict[Request, int] = {}
    last_started: dict[Request, int] = {}

    async def worker() -> None:
        while True:
            try:
                item = await queue.get()
            except ShutDown:
                return
            if item in busy:
                overlaps.append(item)
            busy.add(item)
            last_started[item] = clock
            await asyncio.sleep(random.uniform(0, 0.003))
            busy.discard(item)
            queue.done(item)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for _ in range(400):
        clock += 1
        item = random.choice(names)
        last_added[item] = clock
        queue.add(item)
        if random.random() < 0.3:
            await asyncio.sleep(0)

    def caught_up() -> bool:
        # Level-triggered: every key is processed again after its last add.
        return all(last_started.get(item, -1) >= n for item, n in last_added.items())

    for _ in range(1000):
        if caught_up():
            break
        await asyncio.sleep(0.01)
    queue.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 10)
    assert overlaps == []
    assert caught_up()


async def test_add_after_hands_keys_out_in_time_order() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_after(key("late"), 0.3)
    queue.add_after(key("soon"), 0.1)
    queue.add(key("now"))
    assert len(queue) == 1
    got = [await asyncio.wait_for(queue.get(), 10) for _ in range(3)]
    assert got == [key("now"), key("soon"), key("late")]
    assert loop.time() - start >= 0.29


async def test_add_after_keeps_the_earliest_time_for_a_key() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    queue.add_after(key("a"), 0.05)
    queue.add_after(key("a"), 3600)
    assert await asyncio.wait_for(queue.get(), 10) == key("a")
    queue.done(key("a"))
    queue.add_after(key("b"), 3600)
    queue.add_after(key("b"), 0.05)
    assert await asyncio.wait_for(queue.get(), 10) == key("b")
    queue.done(key("b"))
    # Each delayed key came once.
    assert await pending(queue, 0.2) is None


async def test_rate_limited_adds_back_off_exponentially_up_to_the_cap() -> None:
    queue: WorkQueue[Request] = WorkQueue("test", base_delay=0.75, max_delay=900)
    assert [queue.backoff(n) for n in range(4)] == [0.75, 1.5, 3.0, 6.0]
    assert queue.backoff(10) == 768.0
    assert queue.backoff(11) == 900.0
    assert queue.backoff(10_000) == 900.0

    fast: WorkQueue[Request] = WorkQueue("fast", base_delay=0.05, max_delay=0.2)
    loop = asyncio.get_running_loop()
    waits = []
    for attempt in range(6):
        assert fast.num_requeues(key("a")) == attempt
        started = loop.time()
        fast.add_rate_limited(key("a"))
        assert len(fast) == 0  # not before its backoff
        item = await asyncio.wait_for(fast.get(), 10)
        waits.append(loop.time() - started)
        fast.done(item)
    expected = [0.05, 0.1, 0.2, 0.2, 0.2, 0.2]
    for waited, minimum in zip(waits, expected, strict=True):
        assert waited >= minimum - 0.01


async def test_forget_resets_the_backoff() -> None:
    queue: WorkQueue[Request] = WorkQueue("test", base_delay=0.05, max_delay=600)
    for name in ("kept", "forgotten"):
        for _ in range(10):
            queue.add_rate_limited(key(name))
    # The earliest pending add wins: each key comes once, after the base delay.
    got = {await asyncio.wait_for(queue.get(), 10) for _ in range(2)}
    assert got == {key("kept"), key("forgotten")}
    for item in got:
        queue.done(item)
    assert queue.num_requeues(key("kept")) == 10

    queue.forget(key("forgotten"))
    assert queue.num_requeues(key("forgotten")) == 0
    queue.add_rate_limited(key("kept"))  # waits 0.05 * 2**10 = 51 s
    queue.add_rate_limited(key("forgotten"))  # waits 0.05 s again
    assert await asyncio.wait_for(queue.get(), 10) == key("forgotten")
    assert await pending(queue, 0.5) is None
    queue.shutdown()


async def test_shutdown_drains_then_raises_and_wakes_idle_getters() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    idle = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    queue.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(idle, 5)

    queue = WorkQueue("test")
    queue.add(key("a"))
    queue.add_after(key("delayed"), 0.05)
    queue.shutdown()
    queue.add(key("ignored"))
    assert await queue.get() == key("a")
    with pytest.raises(ShutDown):
        await queue.get()
    await asyncio.sleep(0.1)
    assert len(queue) == 0  # the delayed add was dropped


async def test_a_cancelled_getter_passes_its_wakeup_on() -> None:
    queue: WorkQueue[Request] = WorkQueue("test")
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    queue.add(key("a"))
    first.cancel()
    assert await asyncio.wait_for(second, 5) == key("a")
    with pytest.raises(asyncio.CancelledError):
        await first
