"""Budget: first come, first served; timeouts and cancellations hold nothing; never over."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable

import pytest

from detforge.serving.budget import Budget, BudgetTimeout


def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait for ``condition`` (a bound on hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_first_come_first_served_and_timeouts():
    budget = Budget(limit=10)
    budget.acquire(6, timeout=0)
    order: list[str] = []

    def take(amount: int, tag: str) -> None:
        budget.acquire(amount, timeout=30)
        order.append(tag)

    big = threading.Thread(target=take, args=(10, "big"))
    big.start()
    _until(lambda: budget.stats()["waiting"] == 1, "the big request to wait")
    small = threading.Thread(target=take, args=(4, "small"))
    small.start()
    # 4 would fit beside the 6 held, but the big request came first: the small one waits too
    _until(lambda: budget.stats()["waiting"] == 2, "the small request to wait")
    assert order == [] and budget.in_use == 6
    budget.release(6)
    big.join(30)
    assert order == ["big"] and budget.in_use == 10 and budget.stats()["waiting"] == 1
    budget.release(10)
    small.join(30)
    assert order == ["big", "small"] and budget.in_use == 4

    with pytest.raises(BudgetTimeout, match=r"7 units are not free within 0\.05 s"):
        budget.acquire(7, timeout=0.05)
    assert budget.in_use == 4  # a request that timed out holds nothing
    budget.release(4)
    stats = budget.stats()
    assert stats == dict(limit=10, in_use=0, high_water=10, waiting=0, granted=3, timeouts=1)
    for amount in (11, -1):
        with pytest.raises(ValueError, match="budget of 10"):
            budget.acquire(amount, timeout=0)
    with pytest.raises(ValueError, match="only 0 are held"):
        budget.release(1)


def test_async_waiters_cancelled_or_timed_out_hold_nothing():
    async def scenario() -> None:
        budget = Budget(limit=10)
        budget.acquire(8, timeout=0)
        waiter = asyncio.create_task(budget.acquire_async(5, timeout=None))
        while budget.stats()["waiting"] == 0:
            await asyncio.sleep(0.001)
        waiter.cancel()  # e.g. the client went away
        with pytest.raises(asyncio.CancelledError):
            await waiter
        with pytest.raises(BudgetTimeout):
            await budget.acquire_async(5, timeout=0.01)
        assert budget.stats()["waiting"] == 0
        budget.release(8)
        async with budget.hold_async(10, timeout=1):
            assert budget.in_use == 10
        assert budget.in_use == 0 and budget.high_water == 10

    asyncio.run(scenario())


def test_never_more_than_the_limit_under_contention():
    budget = Budget(limit=100)
    lock = threading.Lock()
    held = [0, 0]  # now, most

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            amount = rng.randint(1, 100)
            with budget.hold(amount, timeout=None):
                with lock:
                    held[0] += amount
                    held[1] = max(held[1], held[0])
                with lock:
                    held[0] -= amount

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stats = budget.stats()
    assert held[1] <= 100 and stats["high_water"] <= 100
    assert stats["in_use"] == 0 and stats["granted"] == 12 * 200 and stats["timeouts"] == 0
