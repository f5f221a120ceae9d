"""Near-miss suggestions for error messages ("did you mean ...?")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "did_you_mean"]


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``word``, best first.

    Matching ignores case, so ``'fpn'`` finds ``'FPN'``.

    Example:
        >>> close_matches('FPNN', ['FPN', 'PAFPN', 'ResNet'])
        ['FPN', 'PAFPN']
    """
    by_lower: dict[str, str] = {}
    for cand in candidates:
        by_lower.setdefault(cand.lower(), cand)
    hits = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[h] for h in hits]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` (or ``'x' or 'y'``), or ``''`` when nothing is close.

    Example:
        >>> did_you_mean('num_clases', ['num_classes', 'in_channels'])
        "; did you mean 'num_classes'?"
    """
    hits = close_matches(word, candidates)
    if not hits:
        return ""
    return "; did you mean " + " or ".join(repr(h) for h in hits) + "?"
