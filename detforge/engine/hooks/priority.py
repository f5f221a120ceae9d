"""Hook priorities with MMCV's names and numbers (smaller runs earlier)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Priority", "get_priority"]


class Priority(IntEnum):
    """Named hook priorities, ``HIGHEST`` (0) to ``LOWEST`` (100)."""

    HIGHEST = 0
    VERY_HIGH = 10
    HIGH = 30
    ABOVE_NORMAL = 40
    NORMAL = 50
    BELOW_NORMAL = 60
    LOW = 70
    VERY_LOW = 90
    LOWEST = 100


def get_priority(priority: int | str | Priority) -> int:
    """The integer priority of a name (case-insensitive), ``Priority`` or int in ``[0, 100]``.

    Raises:
        ValueError: an unknown name or an int out of range.
        TypeError: neither int nor str.

    Example:
        >>> get_priority('very_high'), get_priority(Priority.LOW), get_priority(42)
        (10, 70, 42)
    """
    if isinstance(priority, Priority):
        return int(priority)
    if isinstance(priority, bool):
        raise TypeError(f"hook priority must be an int or a name, got {priority!r}")
    if isinstance(priority, int):
        if not 0 <= priority <= 100:
            raise ValueError(f"hook priority must be in [0, 100], got {priority}")
        return priority
    if isinstance(priority, str):
        try:
            return int(Priority[priority.upper()])
        except KeyError:
            names = ", ".join(p.name for p in Priority)
            raise ValueError(f"unknown hook priority {priority!r}; use one of {names}") from None
    raise TypeError(f"hook priority must be an int or a name, got {type(priority).__name__}")
