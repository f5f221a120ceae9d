"""Every error class of the project is a DetforgeError (what the CLI prints as one line) and
still the builtin v2 raised in its place."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import detforge
from detforge.errors import DetforgeError

PACKAGE = Path(detforge.__file__).parent
# The web service answers these with an HTTP status; they never reach the command line.
SERVICE_ONLY = {"ServingError", "BatcherBusy", "_TooLarge"}


def _error_classes() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                found.append((module, node.name))
    return found


def test_every_error_class_is_a_detforge_error() -> None:
    classes = [(m, n) for m, n in _error_classes() if n not in SERVICE_ONLY]
    assert len(classes) >= 15, classes  # the scan finds them
    outside = [
        f"{module}.{name}"
        for module, name in classes
        if not issubclass(getattr(importlib.import_module(module), name), DetforgeError)
    ]
    assert outside == []


@pytest.mark.parametrize(
    "module, name, builtins",
    [
        ("detforge.errors", "ConfigKeyError", (KeyError,)),
        ("detforge.errors", "UnexpectedKeyError", (TypeError,)),
        ("detforge.errors", "InvalidLossError", (FloatingPointError,)),
        ("detforge.config.safe_eval", "UnsafeExpressionError", (ValueError,)),
        ("detforge.datasets.issues", "DatasetError", (ValueError,)),
        ("detforge.datasets.transforms._utils", "TransformArgumentError",
         (ValueError, AssertionError)),
        ("detforge.datasets.transforms.formatting", "MissingResultKeyError", (KeyError,)),
        ("detforge.utils.image", "ImageLoadError", (OSError,)),
        ("detforge.utils.checkpoint", "CheckpointError", (FileNotFoundError,)),
        ("detforge.evaluation.coco", "MetricKeyError", (KeyError,)),
        ("detforge.analysis.results", "ResultsError", (ValueError,)),
        ("detforge.analysis.logs", "LogAnalysisError", (ValueError,)),
    ],
)  # fmt: skip
def test_errors_stay_the_builtins_v2_raised(module: str, name: str, builtins: tuple) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, DetforgeError) and issubclass(cls, builtins)
    assert str(cls("names the culprit: a.jpg")) == "names the culprit: a.jpg"
