"""Fixtures for the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run with one CPU thread, as the golden fixtures were computed: BN/GN backward sums (and
    the order of proposals whose scores tie to ~1e-8) depend on the reduction order, which moves
    the gradient norms of small BN biases by up to ~1e-4 relative with more threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
