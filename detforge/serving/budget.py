"""A budget shared by concurrent requests: take an amount before the work, give it back after.

The service charges each image its pixel count before decoding it, so the decoded images in
flight never hold more than ``limit`` pixels together, however many clients upload at once.
Callers are served first come, first served (a large amount is not starved by a stream of small
ones); one that cannot be served within its ``timeout`` gets :class:`BudgetTimeout`. The class
is thread-safe, knows nothing of images, and waits either in a thread (:meth:`Budget.acquire`)
or in an event loop (:meth:`Budget.acquire_async`) without blocking it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager

__all__ = ["Budget", "BudgetTimeout"]


class BudgetTimeout(TimeoutError):
    """Raised when an amount could not be taken from a :class:`Budget` within the timeout."""


class Budget:
    """``limit`` units shared by concurrent callers, handed out in arrival order.

    Args:
        limit: Most units held at once; an amount over ``limit`` can never be served, so
            asking for one raises ``ValueError`` at once.

    Example:
        >>> budget = Budget(limit=100)
        >>> with budget.hold(60, timeout=0):
        ...     budget.in_use
        60
        >>> budget.acquire(30, timeout=0); budget.acquire(50, timeout=0)
        >>> try:
        ...     budget.acquire(40, timeout=0.01)
        ... except BudgetTimeout as exc:
        ...     print(exc)
        40 units are not free within 0.01 s (80 of 100 in use)
        >>> budget.release(80); budget.stats()
        {'limit': 100, 'in_use': 0, 'high_water': 80, 'waiting': 0, 'granted': 3, 'timeouts': 1}
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a budget needs a limit >= 1, got {limit}")
        self.limit = int(limit)
        self._lock = threading.Lock()
        self._waiters: deque[tuple[int, Future[None]]] = deque()
        self._in_use = 0
        self._high_water = 0
        self._granted = 0
        self._timeouts = 0

    @property
    def in_use(self) -> int:
        """Units held now."""
        return self._in_use

    @property
    def high_water(self) -> int:
        """Most units ever held at once (never more than ``limit``)."""
        return self._high_water

    def stats(self) -> dict[str, int]:
        """``limit``, ``in_use``, ``high_water``, ``waiting``, ``granted`` and ``timeouts``."""
        with self._lock:
            waiting = sum(not future.done() for _, future in self._waiters)
            return dict(
                limit=self.limit,
                in_use=self._in_use,
                high_water=self._high_water,
                waiting=waiting,
                granted=self._granted,
                timeouts=self._timeouts,
            )

    def acquire(self, amount: int, timeout: float | None) -> None:
        """Take ``amount`` units, waiting in this thread at most ``timeout`` seconds.

        Raises:
            BudgetTimeout: the units did not become free in time (nothing is held then).
            ValueError: ``amount`` is negative or over the whole ``limit``.
        """
        future = self._enqueue(amount)
        try:
            future.result(timeout)
        except TimeoutError:
            self._give_up(future, amount, timeout)

    async def acquire_async(self, amount: int, timeout: float | None) -> None:
        """:meth:`acquire` for an event loop: the loop keeps running while this waits.

        If the awaiting task is cancelled meanwhile, nothing stays held.
        """
        future = self._enqueue(amount)
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            self._give_up(future, amount, timeout)
        except asyncio.CancelledError:
            if not self._withdraw(future):
                self.release(amount)  # granted just as the task was cancelled
            raise

    def release(self, amount: int) -> None:
        """Give back ``amount`` units taken by :meth:`acquire` and serve whoever waits."""
        with self._lock:
            if amount > self._in_use:
                raise ValueError(f"releasing {amount} units, but only {self._in_use} are held")
            self._in_use -= amount
            self._serve()

    @contextmanager
    def hold(self, amount: int, timeout: float | None) -> Iterator[None]:
        """Hold ``amount`` units for the ``with`` block (:meth:`acquire`, then release)."""
        self.acquire(amount, timeout)
        try:
            yield
        finally:
            self.release(amount)

    @asynccontextmanager
    async def hold_async(self, amount: int, timeout: float | None) -> AsyncIterator[None]:
        """Hold ``amount`` units for the ``async with`` block."""
        await self.acquire_async(amount, timeout)
        try:
            yield
        finally:
            self.release(amount)

    def _enqueue(self, amount: int) -> Future[None]:
        if not 0 <= amount <= self.limit:
            raise ValueError(f"cannot take {amount} units from a budget of {self.limit}")
        future: Future[None] = Future()
        with self._lock:
            self._waiters.append((amount, future))
            self._serve()
        return future

    def _serve(self) -> None:
        """Grant waiters in arrival order while the oldest one fits (the lock is held)."""
        while self._waiters:
            amount, future = self._waiters[0]
            if future.cancelled():  # its task was cancelled while it waited
                self._waiters.popleft()
                continue
            if self._in_use + amount > self.limit:
                return
            self._waiters.popleft()
            if future.set_running_or_notify_cancel():  # from here on it cannot be cancelled
                self._in_use += amount
                self._high_water = max(self._high_water, self._in_use)
                self._granted += 1
                future.set_result(None)

    def _withdraw(self, future: Future[None]) -> bool:
        """Take a waiter out of the line; False when it was granted meanwhile (it holds)."""
        with self._lock:
            if not future.cancel():  # finished: granted between the timeout and now
                return False
            self._serve()  # the head may have left: those behind it may fit now
            return True

    def _give_up(self, future: Future[None], amount: int, timeout: float | None) -> None:
        if not self._withdraw(future):
            return  # granted just in time: the caller holds it
        with self._lock:
            self._timeouts += 1
            in_use = self._in_use
        raise BudgetTimeout(
            f"{amount} units are not free within {timeout} s ({in_use} of {self.limit} in use)"
        )
