"""``DictAction``: ``--cfg-options KEY=VALUE ...`` with mmcv 1.x's value grammar.

Values are parsed as follows (quotes stripped, all spaces removed first):

* ``(a,b)`` is a tuple, ``[a,b]`` a list, ``a,b`` a list; brackets nest: ``[(a,b),[1,2]]``;
* a scalar is tried as ``int``, then ``float``, then ``true``/``false`` (any case) as a bool,
  then ``None`` (exactly; lower-case ``none`` stays a string), else it is a string.

Where mmcv would recurse forever or silently produce garbage, a :class:`ConfigError` says what
is wrong: two bracketed items without a comma between them (``[(1333,800)(1333,640)]``),
brackets nested deeper than :data:`MAX_DEPTH`, and a ``{...}`` dict (which mmcv reads as a list
of strings).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from detforge.errors import ConfigError

__all__ = ["DictAction", "parse_cfg_options", "parse_cfg_value"]


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
MAX_DEPTH = 100
"""Brackets nested deeper than this are refused (a typo, and Python's recursion limit)."""


def _shown(value: str, limit: int = 80) -> str:
    """``value`` for an error message, cut after ``limit`` characters."""
    return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"


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
                raise ConfigError(f"Imbalanced brackets exist in {_shown(original)}")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0:
        raise ConfigError(f"Imbalanced brackets exist in {_shown(original)}")
    if start < len(text):
        parts.append(text[start:])
    return parts


def _glued_brackets(text: str) -> str:
    """Where a bracketed item meets another item without a comma: ``"'(1,2)' and '(3,4)'"``."""
    depth = 0
    for index, char in enumerate(text):
        if char in "([":
            if depth == 0 and index > 0:
                break
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth == 0 and index < len(text) - 1:
                index += 1
                break
    else:
        return repr(_shown(text, 40))
    return f"{_shown(text[:index], 40)!r} and {_shown(text[index:], 40)!r}"


def _parse(text: str, original: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"brackets are nested deeper than {MAX_DEPTH} levels in {_shown(original)}"
        )
    if _encloses(text):
        parts = _split_top_level(text[1:-1], original)
        items = [_parse(p.strip("'\""), original, depth + 1) for p in parts]
        return tuple(items) if text[0] == "(" else items
    if "," not in text:
        return _parse_scalar(text)
    parts = [part.strip("'\"") for part in _split_top_level(text, original)]
    if parts == [text]:  # a comma inside brackets that enclose only part of the text
        raise ConfigError(f"missing comma between {_glued_brackets(text)} in {_shown(original)}")
    return [_parse(part, original, depth + 1) for part in parts]


def parse_cfg_value(value: str) -> Any:
    """Parse one ``--cfg-options`` value.

    Raises:
        ConfigError: the brackets are not balanced, two bracketed items lack the comma
            between them, brackets nest deeper than :data:`MAX_DEPTH`, or the value is a
            ``{...}`` dict.

    Example:
        >>> parse_cfg_value('[(a,b), [1,2], false]')
        [('a', 'b'), [1, 2], False]
        >>> parse_cfg_value('none'), parse_cfg_value('None')
        ('none', None)
        >>> parse_cfg_value('[(1333,800)(1333,640)]')
        Traceback (most recent call last):
        ...
        detforge.errors.ConfigError: missing comma between '(1333,800)' and '(1333,640)' in ...
    """
    text = value.strip("'\"").replace(" ", "")
    if text.startswith("{") and text.endswith("}"):
        raise ConfigError(
            f"{_shown(value)} is a dict, which --cfg-options values cannot be (mmcv reads it as "
            "a list of strings); set the keys one by one (KEY.a=1 KEY.b=2) or use CFG_OPTIONS"
        )
    return _parse(text, value, 0)


def parse_cfg_options(words: Sequence[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` words (the ``--cfg-options`` list) into a dict; later words win.

    Raises:
        ConfigError: a word is not ``KEY=VALUE`` or its value cannot be parsed; the message
            names the option.

    Example:
        >>> parse_cfg_options(['optimizer.lr=0.01', 'a.b=[1,2]'])
        {'optimizer.lr': 0.01, 'a.b': [1, 2]}
    """
    options = {}
    for word in words:
        key, sep, raw = str(word).partition("=")
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got '{word}'")
        try:
            options[key] = parse_cfg_value(raw)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    return options


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
        try:
            options = parse_cfg_options(words)
        except ConfigError as exc:
            parser.error(f"{option_string or self.dest}: {exc}")
        setattr(namespace, self.dest, options)
