"""A folder of images → a COCO json without annotations, for testing on new images.

Follows MMDetection v2's ``tools/dataset_converters/images2coco.py``: every file under the folder
(recursively) is an image whose width and height are read from the file; the categories come from
a class-names file. Differences: ``file_name`` is relative to the image folder (v2 prefixes it with
the folder as given on the command line, which breaks with ``img_prefix``); files that are not
readable images are reported and skipped instead of stopping the run; ``exclude_extensions`` match
file extensions (``png`` or ``.png``, any case); files are listed in sorted order; ids start at 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from detforge.datasets.converters._coco import (
    CocoBuilder,
    ConversionResult,
    finish,
    image_size,
    progress,
    read_class_names,
)
from detforge.datasets.issues import DataIssues, DatasetError
from detforge.utils.image import ImageLoadError

__all__ = ["images_to_coco", "list_files"]


def list_files(
    folder: str | os.PathLike[str], exclude_extensions: Sequence[str] | None = None
) -> list[Path]:
    """Files under ``folder`` (recursively, sorted), minus those with an excluded extension."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    excluded = {"." + e.lower().lstrip(".") for e in exclude_extensions or ()}
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return [p for p in files if p.suffix.lower() not in excluded]


def images_to_coco(
    img_dir: str | os.PathLike[str],
    classes: Sequence[str] | str | os.PathLike[str],
    out_file: str | os.PathLike[str] | None = None,
    *,
    exclude_extensions: Sequence[str] | None = None,
    check_images: bool = False,
    strict: bool = False,
) -> ConversionResult:
    """Build a test-only COCO dict (``annotations`` empty) for the images in ``img_dir``.

    Args:
        img_dir: Folder of images (searched recursively).
        classes: Class names, or a file with one name per line; category ``i`` gets id ``i + 1``.
        out_file: Json file to write, or ``None`` to only return the dict.
        exclude_extensions: Extensions to leave out, e.g. ``['png', 'bmp']``.
        check_images: Decode every image fully (finds truncated files; slower).
        strict: Raise on the first unreadable file instead of skipping it.

    Raises:
        DatasetError: no readable image was found.

    Example:
        >>> import tempfile, pathlib, numpy as np, cv2
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = cv2.imwrite(str(d / 'a.png'), np.zeros((4, 6, 3), np.uint8))
        >>> images_to_coco(d, ['cat']).data['images']
        [{'id': 1, 'file_name': 'a.png', 'width': 6, 'height': 4}]
    """
    root = Path(img_dir)
    files = list_files(root, exclude_extensions)
    names = read_class_names(classes)
    issues = DataIssues(f"images({root})", strict=strict)
    builder = CocoBuilder(names)
    for path in progress(files, desc=root.name or str(root)):
        rel = path.relative_to(root).as_posix()
        try:
            width, height = image_size(path, decode=check_images)
        except ImageLoadError as exc:
            issues.add("files that are not readable images", rel, str(exc))
            continue
        builder.add_image(rel, width, height)
    if not builder.images:
        raise DatasetError(
            f"{root}: no readable images ({len(files)} files, {issues.count()} unreadable)"
        )
    return finish(builder, issues, out_file, type="instance")
