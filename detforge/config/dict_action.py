"""``DictAction``: ``--cfg-options KEY=VALUE ...`` with mmcv 1.x's value grammar.

Values are parsed as follows (quotes stripped, all spaces removed first):

* ``(a,b)`` is a tuple, ``[a,b]`` a list, ``a,b`` a list; brackets nest: ``[(a,b),[1,2]]``;
* a scalar is tried as ``int``, then ``float``, then ``true``/``false`` (any case) as a bool,
  then ``None`` (exactly; lower-case ``none`` stays a string), else it is a string.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from detforge.errors import ConfigError

__all__ = ["DictAction", "parse_cfg_value"]


def _parse_scalar(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text == "None":
        return None
    return text


_PAIRS = {"(": ")", "[": "]"}


def _encloses(text: str) -> bool:
    """Whether ``text`` is one bracket pair around everything, as in ``(a,b)`` (not ``(a),(b)``)."""
    if len(text) < 2 or text[0] not in _PAIRS or text[-1] != _PAIRS[text[0]]:
        return False
    depth = 0
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if depth == 0 and index < len(text) - 1:
            return False
    return True


def _split_top_level(text: str, original: str) -> list[str]:
    """Split on the commas that are outside brackets."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"Imbalanced brackets exist in {original}")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0:
        raise ConfigError(f"Imbalanced brackets exist in {original}")
    if start < len(text):
        parts.append(text[start:])
    return parts


def parse_cfg_value(value: str) -> Any:
    """Parse one ``--cfg-options`` value.

    Raises:
        ConfigError: the brackets are not balanced.

    Example:
        >>> parse_cfg_value('[(a,b), [1,2], false]')
        [('a', 'b'), [1, 2], False]
        >>> parse_cfg_value('none'), parse_cfg_value('None')
        ('none', None)
    """
    text = value.strip("'\"").replace(" ", "")
    is_tuple = False
    if _encloses(text):
        is_tuple = text[0] == "("
        text = text[1:-1]
    elif "," not in text:
        return _parse_scalar(text)
    items = [parse_cfg_value(part) for part in _split_top_level(text, value)]
    return tuple(items) if is_tuple else items


class DictAction(argparse.Action):
    """argparse action that turns ``KEY=VALUE`` words into a dict (use with ``nargs='+'``).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        >>> parser.parse_args(['--cfg-options', 'optimizer.lr=0.01', 'a.b=[1,2]']).cfg_options
        {'optimizer.lr': 0.01, 'a.b': [1, 2]}
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        words = [values] if isinstance(values, str) else list(values or [])
        options = {}
        for word in words:
            key, sep, raw = str(word).partition("=")
            if not sep or not key:
                parser.error(f"{option_string or self.dest}: expected KEY=VALUE, got '{word}'")
            try:
                options[key] = parse_cfg_value(raw)
            except ConfigError as exc:
                parser.error(f"{option_string or self.dest}: {key}: {exc}")
        setattr(namespace, self.dest, options)
