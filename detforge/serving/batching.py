"""Micro-batching: requests from many clients share forwards, one forward at a time.

A single worker thread owns the model. It takes the oldest queued item, gathers whatever else
is queued with the same ``batch_key`` (waiting at most ``max_wait_ms`` for more) up to
``max_batch`` items, and runs one ``predict_fn(list)`` call for all of them; items with other
keys wait, in order, for the next batches. Callers get a ``concurrent.futures.Future`` per item
(``asyncio.wrap_future`` makes it awaitable).

``batch_key`` keeps a caller's answer independent of its neighbours when mixing changes the
computation: the service keys images by shape, since a batch of different sizes is padded to
the largest and normalisation layers such as GroupNorm would then see the padding.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["BatcherBusy", "MicroBatcher", "run_grouped"]

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("detforge.serving")


class BatcherBusy(RuntimeError):
    """Raised by :meth:`MicroBatcher.submit` when the queue is full or the worker stopped."""


@dataclass
class _Item(Generic[T, R]):
    payload: T
    key: Hashable = None
    future: Future[R] = field(default_factory=Future)


class MicroBatcher(Generic[T, R]):
    """Queue items and run them through ``predict_fn`` in batches on one worker thread.

    Args:
        predict_fn: Takes a list of items, returns one result per item, in order.
        max_batch: Most items per ``predict_fn`` call.
        max_wait_ms: How long the worker waits for more items once it holds one.
        max_queue: Most items waiting; :meth:`submit` raises :class:`BatcherBusy` beyond.
        batch_key: Items share a batch only when this gives them equal keys (``None``: any
            items may share one).

    Example:
        >>> batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch=4)
        >>> batcher.start()
        >>> [f.result() for f in [batcher.submit(i) for i in range(5)]]
        [0, 2, 4, 6, 8]
        >>> batcher.stop()
        >>> batcher.stats()['images']
        5
        >>> seen = []
        >>> by_parity = MicroBatcher(lambda xs: seen.append(xs) or xs, batch_key=lambda x: x % 2)
        >>> by_parity.start()
        >>> [f.result() for f in [by_parity.submit(i) for i in range(6)]]
        [0, 1, 2, 3, 4, 5]
        >>> by_parity.stop()
        >>> all(len({x % 2 for x in batch}) == 1 for batch in seen)
        True
    """

    def __init__(
        self,
        predict_fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 2.0,
        max_queue: int = 1024,
        batch_key: Callable[[T], Hashable] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.predict_fn = predict_fn
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_queue = max_queue
        self.batch_key = batch_key
        self._pending: deque[_Item[T, R]] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = dict(
            batches=0, images=0, errors=0, max_batch_seen=0, batch_sizes={}, forward_ms=0.0
        )

    def start(self) -> None:
        """Start the worker thread (no-op when it runs already)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._ready:
            self._stopping = False
        self._thread = threading.Thread(target=self._work, name="detforge-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued items, then stop the worker."""
        if self._thread is None:
            return
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, payload: T) -> Future[R]:
        """Queue ``payload``; the returned future holds its result (or exception)."""
        key = None if self.batch_key is None else self.batch_key(payload)
        item: _Item[T, R] = _Item(payload, key)
        with self._ready:
            if self._stopping or not self.running:
                raise BatcherBusy("the inference worker is not running")
            if len(self._pending) >= self.max_queue:
                raise BatcherBusy(
                    f"the inference queue is full ({self.max_queue} waiting); retry later"
                )
            self._pending.append(item)
            self._ready.notify()
        return item.future

    def stats(self) -> dict[str, Any]:
        """Counters: batches, images, errors, max_batch_seen, batch_sizes, queued, ..."""
        with self._lock:
            out = dict(self._stats, batch_sizes=dict(self._stats["batch_sizes"]))
        out["queued"] = len(self._pending)
        return out

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run([item for item in batch if item.future.set_running_or_notify_cancel()])
            # drop the payloads now, not when the next batch arrives: callers count on their
            # memory being free once their future is done
            del batch

    def _next_batch(self) -> list[_Item[T, R]] | None:
        """The oldest item and queued ones with its key, or None once stopped and drained."""
        with self._ready:
            while not self._pending:
                if self._stopping:
                    return None
                self._ready.wait()
            batch = [self._pending.popleft()]
            deadline = time.monotonic() + self.max_wait
            while True:
                self._take_same_key(batch)
                remaining = deadline - time.monotonic()
                if len(batch) >= self.max_batch or self._stopping or remaining <= 0:
                    return batch
                self._ready.wait(remaining)

    def _take_same_key(self, batch: list[_Item[T, R]]) -> None:
        """Move queued items with ``batch[0]``'s key into ``batch`` (in order, up to full)."""
        key, keep = batch[0].key, deque[_Item[T, R]]()
        while self._pending:
            item = self._pending.popleft()
            if len(batch) < self.max_batch and item.key == key:
                batch.append(item)
            else:
                keep.append(item)
        self._pending = keep

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
        results = _checked(self.predict_fn(payloads), len(payloads))
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


def run_grouped(
    predict_fn: Callable[[list[T]], Sequence[R]],
    items: Sequence[T],
    key: Callable[[T], Hashable],
) -> list[R]:
    """``predict_fn`` once for each group of ``items`` with equal keys; results in input order.

    The one-shot form of :class:`MicroBatcher`'s ``batch_key`` (the TorchServe handler gets its
    batches whole).

    Example:
        >>> run_grouped(lambda xs: [(x, len(xs)) for x in xs], [1, 2, 3, 5], key=lambda x: x % 2)
        [(1, 3), (2, 1), (3, 3), (5, 3)]
    """
    groups: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(key(item), []).append(index)
    results: list[Any] = [None] * len(items)
    for indices in groups.values():
        outputs = _checked(predict_fn([items[i] for i in indices]), len(indices))
        for index, output in zip(indices, outputs, strict=True):
            results[index] = output
    return results


def _checked(results: Sequence[R], count: int) -> Sequence[R]:
    if len(results) != count:
        raise RuntimeError(f"predict_fn returned {len(results)} results for {count} inputs")
    return results
