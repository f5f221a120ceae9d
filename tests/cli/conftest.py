"""Fixtures of the command-line tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def restore_log_handlers() -> Iterator[None]:
    """``main`` adds a handler bound to the (captured) stderr of the moment; drop it after."""
    logger = logging.getLogger("detforge")
    handlers = list(logger.handlers)
    yield
    logger.handlers[:] = handlers
