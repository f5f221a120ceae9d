"""Endless iteration over a data loader for ``IterBasedRunner``, and skipping the batches a
resumed run already used without loading them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader, IterableDataset, Sampler

if TYPE_CHECKING:
    from detforge.engine.runner import _BaseRunner

__all__ = ["IterLoader", "SkipBatches", "skipping_iterator"]


class SkipBatches(Sampler[list[int]]):
    """A batch sampler without the first ``skip`` batches of ``batch_sampler``.

    Example:
        >>> list(SkipBatches([[0, 1], [2, 3], [4]], skip=2)), len(SkipBatches([[0], [1]], 5))
        ([[4]], 0)
    """

    def __init__(self, batch_sampler: Any, skip: int) -> None:
        self.batch_sampler = batch_sampler
        self.skip = skip

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)


def skipping_iterator(loader: Iterable[Any], skip: int) -> Iterator[Any]:
    """An iterator over ``loader`` that starts after ``skip`` batches.

    For a map-style ``DataLoader`` the batches are skipped in its batch sampler, so their
    images are neither loaded nor transformed (which would also draw random numbers); other
    iterables are advanced ``skip`` times.

    Example:
        >>> list(skipping_iterator([10, 11, 12], 2))
        [12]
    """
    if (
        isinstance(loader, DataLoader)
        and loader.batch_sampler is not None
        and not isinstance(loader.dataset, IterableDataset)
    ):
        workers = loader.num_workers
        skipping: DataLoader[Any] = DataLoader(
            loader.dataset,
            batch_sampler=SkipBatches(loader.batch_sampler, skip),
            num_workers=workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            timeout=loader.timeout,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context if workers else None,
            generator=loader.generator,
            prefetch_factor=loader.prefetch_factor if workers else None,
            persistent_workers=loader.persistent_workers if workers else False,
        )
        return iter(skipping)
    it = iter(loader)
    for _ in range(skip):
        next(it)
    return it


class IterLoader:
    """Endless iteration over ``loader``: each completed pass adds one to ``runner._epoch``
    (and calls ``set_epoch`` on the loader's sampler); ``position`` counts the batches of the
    current pass. Other attributes (``dataset``, ``sampler``, ...) are the loader's.

    Args:
        loader: A ``DataLoader`` (or any re-iterable with ``__len__``).
        runner: The runner whose epoch counter the passes advance.
        skip: Batches of the first pass to skip (a resumed run's ``data_position``).
    """

    def __init__(self, loader: Any, runner: _BaseRunner, skip: int = 0) -> None:
        self._loader = loader
        self._runner = runner
        self._it = skipping_iterator(loader, skip) if skip else iter(loader)
        self.position = skip

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:  # dataset, sampler, ... of the wrapped loader
        if name == "_loader":  # not set yet (copy/pickle): no endless recursion
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __next__(self) -> Any:
        try:
            batch = next(self._it)
        except StopIteration:
            self._runner._epoch += 1
            sampler: Any = getattr(self._loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self._runner._epoch)
            self._it = iter(self._loader)
            self.position = 0
            batch = next(self._it)
        self.position += 1
        return batch
