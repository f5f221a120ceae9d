"""Bad-data accounting: fail loudly (strict) or skip and say what was dropped (default).

Every dataset owns one :class:`DataIssues`. Loading code reports each problem with
:meth:`DataIssues.add`; in strict mode the first problem raises :class:`DatasetError` naming the
file and the annotation, otherwise problems are counted and :meth:`DataIssues.report` logs one
summary line per dataset, e.g.
``XMLDataset(BCCD/ImageSets/Main/train.txt): dropped 2 boxes with zero or negative size
(BloodImage_00338.xml, BloodImage_00343.xml)``. A problem that was repaired rather than dropped
is reported with its own verb (``action``), e.g. ``...; fixed 3 annotations without 'iscrowd'
(taken as 0) (a.jpg)``.

Images that cannot be read are the one problem found while iterating rather than loading: the
dataset turns each into an :class:`UnreadableImage` (or raises the ``ImageLoadError`` in strict
mode) and whoever consumes the samples counts it with :meth:`DataIssues.skip_unreadable` —
training draws another image, testing keeps the image's place with an empty result.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from detforge.errors import DetforgeError
from detforge.utils.suggest import close_matches

__all__ = [
    "UNREADABLE_IMAGES",
    "DataIssues",
    "DatasetError",
    "UnreadableImage",
    "check_classes_known",
]

logger = logging.getLogger("detforge")

_SHOWN = 5

#: The kind :meth:`DataIssues.skip_unreadable` counts under.
UNREADABLE_IMAGES = "unreadable images"


class DatasetError(DetforgeError, ValueError, AssertionError):
    """Bad data found in strict mode (or data that cannot be used at all); also an
    ``AssertionError``, as v2's datasets asserted."""


@dataclass(frozen=True)
class UnreadableImage:
    """Stands in for the sample of an image that cannot be read (a non-strict dataset's
    ``__getitem__`` returns it instead of raising).

    Attributes:
        filename: The image as the annotation file names it (``data_infos[i]['filename']``).
        reason: The ``ImageLoadError`` message (it names the full path and what is wrong).
    """

    filename: str
    reason: str


class DataIssues:
    """Collects problems found while loading one dataset.

    Args:
        source: Names the dataset in messages, e.g. ``'CocoDataset(data/ann.json)'``.
        strict: Raise on the first problem instead of counting it.
        action: What happens to a counted item, the verb of the summary line.

    Example:
        >>> issues = DataIssues('CocoDataset(ann.json)', strict=False)
        >>> issues.add('boxes with zero or negative size', 'a.jpg', 'bbox [1, 1, 0, 5]')
        >>> issues.add('boxes with zero or negative size', 'b.jpg', 'bbox [3, 3, 3, 4]')
        >>> issues.summary()
        'CocoDataset(ann.json): dropped 2 boxes with zero or negative size (a.jpg, b.jpg)'
        >>> issues.add("annotations without 'iscrowd' (taken as 0)", 'a.jpg', action='fixed')
        >>> issues.summary().split('; ')[1]
        "fixed 1 annotations without 'iscrowd' (taken as 0) (a.jpg)"
    """

    def __init__(self, source: str, strict: bool = False, action: str = "dropped") -> None:
        self.source = source
        self.strict = strict
        self.action = action
        self._places: dict[str, list[str]] = defaultdict(list)
        self._actions: dict[str, str] = {}

    def __deepcopy__(self, memo: dict[int, object]) -> DataIssues:
        # one accumulator per dataset: pipelines that deep-copy ``results`` share it
        return self

    def add(self, kind: str, where: str, detail: str = "", action: str | None = None) -> None:
        """Record one problem.

        Args:
            kind: A plural noun phrase, e.g. ``'boxes outside the image'``.
            where: The file or image it was found in.
            detail: The offending value (shown in strict mode's error).
            action: The verb of the summary: by default the dataset's (``'dropped'``), or e.g.
                ``'fixed'`` for a problem that was repaired.

        Raises:
            DatasetError: in strict mode, naming the dataset, ``where`` and ``detail``.
        """
        if self.strict:
            extra = f": {detail}" if detail else ""
            raise DatasetError(f"{self.source}: {kind} in {where}{extra} (strict mode)")
        self._places[kind].append(where)
        self._actions.setdefault(kind, action or self.action)

    def skip_unreadable(self, image: UnreadableImage) -> None:
        """Count an image that cannot be read, once per file, warning the first time.

        The one accounting of unreadable images for training and testing alike; strict mode
        never gets here (the dataset raises the ``ImageLoadError`` instead).

        Example:
            >>> issues = DataIssues('CocoDataset(ann.json)', action='skipped')
            >>> bad = UnreadableImage('a.jpg', 'image file is empty: /data/a.jpg')
            >>> issues.skip_unreadable(bad); issues.skip_unreadable(bad)
            >>> issues.summary()
            'CocoDataset(ann.json): skipped 1 unreadable images (a.jpg)'
        """
        if image.filename in self._places.get(UNREADABLE_IMAGES, ()):
            return
        logger.warning("%s: skipping unreadable image: %s", self.source, image.reason)
        self._places[UNREADABLE_IMAGES].append(image.filename)
        self._actions.setdefault(UNREADABLE_IMAGES, "skipped")

    def count(self, kind: str | None = None) -> int:
        if kind is not None:
            return len(self._places.get(kind, []))
        return sum(len(v) for v in self._places.values())

    @property
    def kinds(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._places.items()}

    def summary(self) -> str | None:
        """One line describing everything dropped, or ``None`` when nothing was."""
        if not self._places:
            return None
        parts: dict[str, list[str]] = defaultdict(list)
        for kind, places in self._places.items():
            unique = list(dict.fromkeys(places))
            shown = ", ".join(unique[:_SHOWN]) + (", ..." if len(unique) > _SHOWN else "")
            parts[self._actions[kind]].append(f"{len(places)} {kind} ({shown})")
        groups = [f"{action} " + "; ".join(items) for action, items in parts.items()]
        return f"{self.source}: " + "; ".join(groups)

    def report(self) -> None:
        """Log the summary line (a warning) if anything was dropped."""
        line = self.summary()
        if line:
            logger.warning(line)


def check_classes_known(
    source: str, classes: Sequence[str], names: Sequence[str], where: str
) -> None:
    """Raise when a name in ``classes`` is none of the ``names`` the annotations use.

    Args:
        source: The annotation file (or dataset) the names come from.
        classes: The class names asked for.
        names: The names found in the annotations, in their order.
        where: What the names are, e.g. ``'category in the json'``.

    Raises:
        DatasetError: listing the unknown classes, close matches and every name found.

    Example:
        >>> check_classes_known('ann.json', ['persn'], ['person', 'car'], 'category in the json')
        Traceback (most recent call last):
        ...
        detforge.datasets.issues.DatasetError: ann.json: classes ['persn'] match no category \
in the json ('persn': did you mean 'person'?); the names there are: ['person', 'car']
    """
    unknown = [c for c in classes if c not in names]
    if not unknown:
        return
    hints = [(c, close_matches(c, names)) for c in unknown]
    shown = "; ".join(
        f"{c!r}: did you mean " + " or ".join(repr(m) for m in matches) + "?"
        for c, matches in hints
        if matches
    )
    raise DatasetError(
        f"{source}: classes {unknown} match no {where}"
        + (f" ({shown})" if shown else "")
        + f"; the names there are: {list(names)}"
    )
