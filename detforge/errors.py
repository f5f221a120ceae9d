"""Exception types that carry a readable message and stay catchable as the builtins v2 raised.

Every error detforge raises on purpose derives from :class:`DetforgeError` (the per-package ones
too: ``DatasetError``, ``ImageLoadError``, ``CheckpointError``, ...), which is what the command
line catches to print one line instead of a traceback.

``KeyError`` prints its argument through ``repr``, which turns a helpful sentence into a quoted
string with escaped newlines; the classes here print the message as written.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigFileError",
    "ConfigFileNotFoundError",
    "ConfigKeyError",
    "ConfigSyntaxError",
    "ConfigTypeError",
    "ConfigValueError",
    "DetforgeError",
    "InvalidLossError",
    "MissingDependencyError",
    "UnexpectedKeyError",
    "UnknownTypeError",
]


class DetforgeError(Exception):
    """Base of every error detforge raises on purpose, with a message that names the culprit.

    The command line prints such an error as one line (``detforge <command>: error: ...``)
    instead of a traceback. Each subclass also derives from the builtin v2 raised in its place
    (``KeyError``, ``ValueError``, ``OSError``, ...), so existing ``except`` clauses still work.

    Example:
        >>> issubclass(ConfigKeyError, DetforgeError), issubclass(ConfigKeyError, KeyError)
        (True, True)
    """


class ConfigError(DetforgeError):
    """A config or a value in it is wrong; the message names the file or config path."""


class ConfigKeyError(ConfigError, KeyError):
    """A key is missing, duplicated or reserved (a ``KeyError`` in mmcv)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(ConfigError, TypeError):
    """A value has the wrong kind for where it is used (a ``TypeError`` in mmcv)."""


class ConfigValueError(ConfigError, ValueError):
    """A value has the right kind but is not allowed (a ``ValueError`` in mmcv)."""


class ConfigFileError(ConfigError, OSError):
    """A config file cannot be used as one (e.g. an extension other than py/json/yaml)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigFileNotFoundError(ConfigFileError, FileNotFoundError):
    """A config file, or a ``_base_`` file it names, does not exist."""


class ConfigSyntaxError(ConfigError, SyntaxError):
    """A config file cannot be parsed; ``filename``/``lineno`` point at the place.

    Built like ``SyntaxError(msg, (filename, lineno, offset, text))``; prints the file, the
    line and the offending text with a caret under the column.
    """

    def __str__(self) -> str:
        where = f"{self.filename}, line {self.lineno}" if self.lineno else f"{self.filename}"
        text = (self.text or "").rstrip("\n")
        if not text.strip():
            return f"{where}: {self.msg}"
        caret = " " * max((self.offset or 1) - 1, 0) + "^"
        return f"{where}: {self.msg}\n    {text}\n    {caret}"


class UnknownTypeError(ConfigKeyError):
    """``type=...`` names nothing registered in the registry it is looked up in."""


class UnexpectedKeyError(ConfigTypeError):
    """A config dict passes a keyword the component's constructor does not accept."""


class InvalidLossError(DetforgeError, FloatingPointError):
    """A training loss became NaN or infinite; the message names the iteration, the loss
    terms and the images of the batch."""


class MissingDependencyError(DetforgeError, ImportError):
    """An optional package that a component needs is not installed; the message names the
    component and the ``pip install`` command."""
