"""``Compose``: run a list of transforms in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detforge.registry import TRANSFORMS, build_module

__all__ = ["Compose"]

Transform = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@TRANSFORMS.register_module()
class Compose:
    """Apply transforms one after another; stop and return ``None`` as soon as one does.

    Args:
        transforms: Transforms as config dicts (``dict(type='Resize', ...)``) or callables.

    Example:
        >>> pipeline = Compose([lambda r: {**r, 'a': 1}, lambda r: {**r, 'b': 2}])
        >>> pipeline({})
        {'a': 1, 'b': 2}
    """

    def __init__(self, transforms: Sequence[Mapping[str, Any] | Transform]) -> None:
        self.transforms: list[Transform] = []
        for index, transform in enumerate(transforms):
            if isinstance(transform, Mapping):
                self.transforms.append(
                    build_module(transform, TRANSFORMS, path=f"pipeline.{index}")
                )
            elif callable(transform):
                self.transforms.append(transform)
            else:
                raise TypeError(
                    f"pipeline.{index}: a transform must be a dict or callable, got {transform!r}"
                )

    def __call__(self, results: dict[str, Any]) -> dict[str, Any] | None:
        current: dict[str, Any] | None = results
        for transform in self.transforms:
            current = transform(current)  # type: ignore[arg-type]
            if current is None:
                return None
        return current

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        lines += [f"    {t}" for t in self.transforms]
        return "\n".join(lines) + "\n)"
