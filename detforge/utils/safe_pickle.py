"""Read result and annotation pickles without running the code a pickle can carry.

``pickle.load`` calls whatever function a file names, so opening a ``results.pkl`` from
someone else can run anything. The files detforge reads as pickles — ``results.pkl`` of
``detforge test --out`` (v2 ``tools/test.py --out``), ``*_results.pkl`` of
``test-robustness``, middle-format ``.pkl`` annotations, proposal files, the per-rank parts
of a distributed test — hold only data, so :func:`load_pickle` lets a file name only:

* builtins: the containers and numbers (``set``, ``frozenset``, ``bytes``, ``bytearray``,
  ``complex``, ...; lists, dicts, tuples, str, int, float need no name);
* ``_codecs.encode`` for the ``latin1`` codec only (how protocol 2 writes ``bytes``, e.g. the
  ``counts`` of a pycocotools RLE mask);
* ``collections.OrderedDict``;
* numpy arrays, dtypes and scalars: ``numpy.ndarray``, ``numpy.dtype`` and the
  ``_reconstruct``/``scalar``/``_frombuffer`` helpers under both the numpy 1 module names
  (``numpy.core.*``) and the numpy 2 ones (``numpy._core.*``).

Anything else (``os.system``, ``functools.partial``, a class of some package) is refused with
:class:`UnsafePickleError` before it is looked up, so nothing in the file runs. Checkpoints
are not read here: they go through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import builtins
import codecs
import importlib
import os
import pickle
from collections import OrderedDict
from typing import Any

from detforge.errors import DetforgeError

__all__ = ["PickleLoadError", "UnsafePickleError", "load_pickle"]

_BUILTINS = {
    "bool",
    "bytearray",
    "bytes",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "set",
    "str",
    "tuple",
}
# numpy 1 wrote numpy.core.*, numpy 2 writes numpy._core.*: the same objects either way.
_NUMPY_HELPERS = {
    "multiarray": ("_reconstruct", "scalar"),
    "numeric": ("_frombuffer",),
}


class PickleLoadError(DetforgeError, pickle.UnpicklingError):
    """A results or annotation pickle cannot be read; the message names the file."""


class UnsafePickleError(PickleLoadError):
    """The pickle names code or objects other than data; it was not loaded."""


def _latin1_encode(obj: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for ``bytes``, and nothing else."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(obj, str):
        raise UnsafePickleError(f"_codecs.encode with {encoding!r}")
    return obj.encode("latin1", errors)


def _numpy_object(module: str, name: str) -> Any:
    import numpy as np

    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    head, _, leaf = module.rpartition(".")
    if head in ("numpy.core", "numpy._core") and name in _NUMPY_HELPERS.get(leaf, ()):
        for core in ("numpy._core", "numpy.core"):  # numpy 2, then numpy 1
            try:
                return getattr(importlib.import_module(f"{core}.{leaf}"), name)
            except (ImportError, AttributeError):
                continue
    return None


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found: Any = None
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            found = getattr(builtins, name)
        elif module == "_codecs" and name == "encode":
            found = _latin1_encode
        elif module == "collections" and name == "OrderedDict":
            found = OrderedDict
        elif module == "numpy" or module.startswith(("numpy.core.", "numpy._core.")):
            found = _numpy_object(module, name)
        if found is None:
            raise UnsafePickleError(f"{module}.{name}")
        return found


def load_pickle(path: str | os.PathLike[str], what: str = "pickle") -> Any:
    """Read a pickle that may hold only data (see the module docstring).

    Args:
        path: The file.
        what: What the file is, for messages (``'results file'``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafePickleError: the file names code or unknown objects; nothing of it was run.
        PickleLoadError: the file is not a pickle, or is truncated.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), 'r.pkl')
        >>> with open(path, 'wb') as f:
        ...     pickle.dump([[np.zeros((1, 5), np.float32)]], f, protocol=2)
        >>> load_pickle(path)[0][0].shape
        (1, 5)
        >>> with open(path, 'wb') as f:
        ...     pickle.dump(print, f)
        >>> load_pickle(path, 'results file')
        Traceback (most recent call last):
        ...
        detforge.utils.safe_pickle.UnsafePickleError: results file .../r.pkl holds code or ...
    """
    try:
        with open(path, "rb") as handle:
            return _DataUnpickler(handle, encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(
            f"{what} {os.fspath(path)} holds code or objects that are not plain data "
            f"({exc}); it was not loaded. Result and annotation pickles may only hold lists, "
            "dicts, tuples, numbers, strings and numpy arrays"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise PickleLoadError(
            f"{what} {os.fspath(path)} is not a readable pickle ({type(exc).__name__}: {exc})"
        ) from None
