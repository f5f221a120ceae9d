"""A safe evaluator for Python dict expressions such as the ``CFG_OPTIONS`` variable.

Only literals are accepted: strings, numbers (with a sign), ``True``/``False``/``None``,
lists, tuples, ``{...}`` dicts and ``dict(key=value, ...)`` calls. Anything else (names,
attribute access, other calls, lambdas, operators, comprehensions, ``**`` unpacking) is refused
with an error that shows the offending text; nothing is ever run.
"""

from __future__ import annotations

import ast
from typing import Any

from detforge.errors import ConfigError

__all__ = ["MAX_DEPTH", "UnsafeExpressionError", "safe_literal_eval"]

MAX_DEPTH = 100
"""Expressions nested deeper than this (brackets, calls, signs) are refused."""


class UnsafeExpressionError(ConfigError, ValueError):
    """The text is not a plain literal expression."""


class _Evaluator:
    def __init__(self, text: str, source_name: str) -> None:
        self.text = text
        self.source_name = source_name
        self.depth = 0

    def refuse(self, node: ast.AST, why: str) -> UnsafeExpressionError:
        segment = ast.get_source_segment(self.text, node) or type(node).__name__
        if len(segment) > 80:
            segment = f"{segment[:80]}... ({len(segment)} characters)"
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        lines = self.text.splitlines() or [""]
        context = lines[line - 1] if 0 < line <= len(lines) else ""
        start = max(0, col - 60) if len(context) > 120 else 0  # long line: around the column
        context = context[start : start + 120] if len(context) > 120 else context
        pointer = " " * (col - start) + "^"
        return UnsafeExpressionError(
            f"{self.source_name}: {why}: {segment!r} (line {line}, column {col + 1}); only "
            "literals, lists, tuples, dicts and dict(...) are allowed"
            f"\n    {context}\n    {pointer}"
        )

    def value(self, node: ast.AST) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.refuse(node, f"nested deeper than {MAX_DEPTH} levels")
            return self._value(node)
        finally:
            self.depth -= 1

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str | int | float | bool) or node.value is None:
                return node.value
            raise self.refuse(node, "unsupported constant")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.value(node.operand)
            if isinstance(operand, bool) or not isinstance(operand, int | float):
                raise self.refuse(node, "a sign only applies to a number")
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.List):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.value(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            result = {}
            for key, val in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise self.refuse(val, "'**' unpacking is not allowed")
                k = self.value(key)
                try:
                    hash(k)
                except TypeError:
                    raise self.refuse(key, "a dict key must be hashable") from None
                result[k] = self.value(val)
            return result
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "dict"):
                raise self.refuse(node, "function calls other than dict(...) are not allowed")
            if node.args:
                raise self.refuse(node.args[0], "dict(...) takes keyword arguments only")
            result = {}
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise self.refuse(keyword.value, "'**' unpacking is not allowed")
                if keyword.arg in result:
                    raise self.refuse(keyword, f"keyword '{keyword.arg}' is repeated")
                result[keyword.arg] = self.value(keyword.value)
            return result
        if isinstance(node, ast.Name):
            raise self.refuse(node, f"the name '{node.id}' is not allowed")
        raise self.refuse(node, f"{type(node).__name__} is not allowed")


def safe_literal_eval(text: str, source_name: str = "expression") -> Any:
    """Evaluate a literal Python expression without running any code.

    Args:
        text: The expression, e.g. ``'{"optimizer.lr": 0.005, "a": dict(b=[1, 2])}'``.
        source_name: Named in error messages (e.g. ``'CFG_OPTIONS'``).

    Raises:
        UnsafeExpressionError: the text is not valid Python, holds anything but literals, or
            nests deeper than :data:`MAX_DEPTH` levels.

    Example:
        >>> safe_literal_eval('dict(lr=0.01, steps=[8, 11], warmup=None)')
        {'lr': 0.01, 'steps': [8, 11], 'warmup': None}
    """
    shown = text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpressionError(
            f"{source_name}: not a valid Python expression: {exc.msg} "
            f"(line {exc.lineno}, column {exc.offset}) in {shown!r}"
        ) from None
    except (RecursionError, MemoryError):  # the parser's own limits on nesting
        raise UnsafeExpressionError(
            f"{source_name}: nested too deeply to parse (over {MAX_DEPTH} levels): {shown!r}"
        ) from None
    return _Evaluator(text.strip(), source_name).value(tree.body)
