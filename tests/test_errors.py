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
        ("detforge.datasets.issues", "DatasetError", (ValueError, AssertionError)),
        ("detforge.errors", "InvalidArgumentError", (ValueError, AssertionError)),
        ("detforge.errors", "InvalidArgumentTypeError", (TypeError, AssertionError)),
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


def _v2_asserted_cases() -> list[tuple[str, object]]:
    """Calls that v2's unit tests expect to fail with ``AssertionError`` (datasets, pipelines,
    box utils, losses, prior generators), each with what our message names."""
    import torch

    from detforge.datasets import XMLDataset
    from detforge.datasets.transforms.geometric import Resize
    from detforge.models.losses import CrossEntropyLoss
    from detforge.models.task_modules.coders import DeltaXYWHBBoxCoder
    from detforge.models.task_modules.prior_generators import MlvlPointGenerator
    from detforge.structures.bbox import bbox_overlaps

    boxes = torch.rand(2, 3, 4)
    return [
        ("XMLDataset needs classes", lambda: XMLDataset(ann_file="x.txt", pipeline=[])),
        ("Resize", lambda: Resize(img_scale=[(1, 2)], multiscale_mode="bad")),
        ("bbox_overlaps: mode", lambda: bbox_overlaps(boxes[0], boxes[0], mode="dice")),
        ("bbox_overlaps: is_aligned", lambda: bbox_overlaps(
            boxes[0], boxes[0, :2], is_aligned=True)),
        ("3 max_shapes", lambda: DeltaXYWHBBoxCoder().decode(
            boxes, torch.zeros(2, 3, 4), max_shape=[(32, 32)] * 3)),
        ("reduction", lambda: CrossEntropyLoss()(
            torch.rand(2, 3), torch.tensor([0, 1]), reduction_override=True)),
        ("feature map sizes for 2 levels", lambda: MlvlPointGenerator(
            strides=[4, 10]).grid_priors([(2, 2)])),
    ]  # fmt: skip


def test_what_v2_asserted_is_an_assertion_error_with_a_readable_message() -> None:
    """v2 users' ``pytest.raises(AssertionError)`` / ``except AssertionError`` keep working."""
    for names, call in _v2_asserted_cases():
        with pytest.raises(AssertionError, match=names) as info:
            call()  # type: ignore[operator]
        assert isinstance(info.value, DetforgeError), (names, type(info.value))


def test_head_argument_errors_are_assertion_errors_as_in_v2() -> None:
    # v2's head unit tests expect AssertionError where its heads asserted on their arguments
    import torch

    from detforge.models.dense_heads import RetinaHead
    from detforge.models.roi_heads.mask_heads import paste_masks

    with pytest.raises(AssertionError, match="num_classes=0 is too small"):
        RetinaHead(num_classes=0, in_channels=8, loss_cls=dict(type="FocalLoss"))
    with pytest.raises(AssertionError, match=r"paste_masks: bboxes must be \[1, 4\]"):
        paste_masks(torch.zeros(1, 1, 4, 4), torch.zeros(2, 4), 8, 8)
