"""Plain-text tables and log routing for the evaluation summaries.

The summaries printed by :func:`~detforge.evaluation.mean_ap.eval_map`,
:func:`~detforge.evaluation.recall.eval_recalls` and the COCO evaluation look like the ASCII
tables MMDetection v2 printed (``+---+`` borders, a rule under the header, optionally one above
the last row), without depending on ``terminaltables``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

__all__ = ["LoggerLike", "format_table", "print_log"]

#: What the ``logger`` argument of the evaluation functions accepts: ``None`` (the ``detforge``
#: logger), ``'silent'`` (print nothing), another logger name, or a :class:`logging.Logger`.
LoggerLike = logging.Logger | str | None


def format_table(rows: Sequence[Sequence[object]], *, footer: bool = False) -> str:
    """Render ``rows`` as an ASCII table whose first row is the header.

    Cells are converted with ``str`` (``None`` becomes an empty cell) and left-aligned; short
    rows are padded with empty cells.

    Args:
        rows: The header row followed by the body rows.
        footer: Draw a rule above the last row as well (used for the ``mAP`` line).

    Returns:
        The table, lines joined by ``\\n``, without a trailing newline.

    Example:
        >>> print(format_table([["class", "ap"], ["cat", "0.500"], ["mAP", "0.500"]], footer=True))
        +-------+-------+
        | class | ap    |
        +-------+-------+
        | cat   | 0.500 |
        +-------+-------+
        | mAP   | 0.500 |
        +-------+-------+
    """
    if not rows:
        raise ValueError("format_table needs at least a header row")
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    num_cols = max(len(row) for row in cells)
    for row in cells:
        row.extend([""] * (num_cols - len(row)))
    widths = [max(len(row[c]) for row in cells) for c in range(num_cols)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def _line(row: list[str]) -> str:
        padded = (f" {cell.ljust(width)} " for cell, width in zip(row, widths, strict=True))
        return "|" + "|".join(padded) + "|"

    lines = [rule, _line(cells[0]), rule]
    body = cells[1:]
    for i, row in enumerate(body):
        if footer and i == len(body) - 1 and i > 0:
            lines.append(rule)
        lines.append(_line(row))
    if body:
        lines.append(rule)
    return "\n".join(lines)


def print_log(msg: str, logger: LoggerLike = None, level: int = logging.INFO) -> None:
    """Send ``msg`` to the ``detforge`` logger, a named logger, a logger object, or nowhere.

    Args:
        msg: The message.
        logger: ``None`` for the ``detforge`` logger, ``'silent'`` to drop the message, any other
            string for ``logging.getLogger(logger)``, or a :class:`logging.Logger`.
        level: The logging level.

    Raises:
        TypeError: ``logger`` is none of the above.
    """
    if isinstance(logger, logging.Logger):
        logger.log(level, msg)
    elif logger is None:
        logging.getLogger("detforge").log(level, msg)
    elif isinstance(logger, str):
        if logger != "silent":
            logging.getLogger(logger).log(level, msg)
    else:
        raise TypeError(
            "logger must be a logging.Logger, a logger name, 'silent' or None, "
            f"got {type(logger).__name__}"
        )
