"""Micro-batching: requests from many clients share forwards, one forward at a time.

A single worker thread owns the model. It takes the oldest queued item, gathers whatever else
is queued (waiting at most ``max_wait_ms`` for more) up to ``max_batch`` items, and runs one
``predict_fn(list)`` call for all of them. Callers get a ``concurrent.futures.Future`` per item
(``asyncio.wrap_future`` makes it awaitable).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["BatcherBusy", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("detforge.serving")


class BatcherBusy(RuntimeError):
    """Raised by :meth:`MicroBatcher.submit` when the queue is full or the worker stopped."""


@dataclass
class _Item(Generic[T, R]):
    payload: T
    future: Future[R] = field(default_factory=Future)


_STOP = object()


class MicroBatcher(Generic[T, R]):
    """Queue items and run them through ``predict_fn`` in batches on one worker thread.

    Args:
        predict_fn: Takes a list of items, returns one result per item, in order.
        max_batch: Most items per ``predict_fn`` call.
        max_wait_ms: How long the worker waits for more items once it holds one.
        max_queue: Most items waiting; :meth:`submit` raises :class:`BatcherBusy` beyond.

    Example:
        >>> batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch=4)
        >>> batcher.start()
        >>> [f.result() for f in [batcher.submit(i) for i in range(5)]]
        [0, 2, 4, 6, 8]
        >>> batcher.stop()
        >>> batcher.stats()['images']
        5
    """

    def __init__(
        self,
        predict_fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 2.0,
        max_queue: int = 1024,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.predict_fn = predict_fn
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = dict(
            batches=0, images=0, errors=0, max_batch_seen=0, batch_sizes={}, forward_ms=0.0
        )

    def start(self) -> None:
        """Start the worker thread (no-op when it runs already)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._work, name="detforge-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued items, then stop the worker."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, payload: T) -> Future[R]:
        """Queue ``payload``; the returned future holds its result (or exception)."""
        if not self.running:
            raise BatcherBusy("the inference worker is not running")
        item: _Item[T, R] = _Item(payload)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise BatcherBusy(
                f"the inference queue is full ({self._queue.maxsize} waiting); retry later"
            ) from None
        return item.future

    def stats(self) -> dict[str, Any]:
        """Counters: batches, images, errors, max_batch_seen, batch_sizes, queued, ..."""
        with self._lock:
            out = dict(self._stats, batch_sizes=dict(self._stats["batch_sizes"]))
        out["queued"] = self._queue.qsize()
        return out

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._run([item for item in batch if item.future.set_running_or_notify_cancel()])
            if stop:
                return

    def _run(self, items: list[_Item[T, R]]) -> None:
        if not items:
            return
        try:
            results = self._forward([item.payload for item in items])
        except Exception as exc:
            if len(items) == 1:
                self._fail(items[0], exc)
                return
            # one bad item must not fail its neighbours: retry them one by one
            logger.warning("batch of %d failed (%s); retrying one by one", len(items), exc)
            for item in items:
                try:
                    item.future.set_result(self._forward([item.payload])[0])
                except Exception as single_exc:
                    self._fail(item, single_exc)
            return
        for item, result in zip(items, results, strict=True):
            item.future.set_result(result)

    def _forward(self, payloads: list[T]) -> Sequence[R]:
        start = time.perf_counter()
        results = self.predict_fn(payloads)
        if len(results) != len(payloads):
            raise RuntimeError(
                f"predict_fn returned {len(results)} results for {len(payloads)} inputs"
            )
        elapsed = (time.perf_counter() - start) * 1000.0
        with self._lock:
            size = len(payloads)
            self._stats["batches"] += 1
            self._stats["images"] += size
            self._stats["forward_ms"] += elapsed
            self._stats["max_batch_seen"] = max(self._stats["max_batch_seen"], size)
            self._stats["batch_sizes"][size] = self._stats["batch_sizes"].get(size, 0) + 1
        return results

    def _fail(self, item: _Item[T, R], exc: BaseException) -> None:
        with self._lock:
            self._stats["errors"] += 1
        item.future.set_exception(exc)
