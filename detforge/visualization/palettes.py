"""Colour palettes with MMDetection v2's semantics (``mmdet/core/visualization/palette.py``).

A palette spec is one of:

- a name: ``'coco'`` (80 colours), ``'voc'`` (20), ``'citys'`` (8), ``'random'`` (a fixed
  pseudo-random colour per class, seed 42, as v2) — ``None`` means ``'random'``;
- a colour name (``'green'``, ``'red'``, ...) or one ``(R, G, B)`` tuple: every class gets it;
- a list of ``(R, G, B)`` tuples, one per class.

Colours are **RGB** tuples of ints in ``[0, 255]``, like v2's dataset ``PALETTE`` attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CITYSCAPES_PALETTE",
    "COCO_PALETTE",
    "COLOR_NAMES",
    "PALETTE_NAMES",
    "VOC_PALETTE",
    "default_palette",
    "get_palette",
    "palette_val",
]

RGB = tuple[int, int, int]

COCO_PALETTE: list[RGB] = [
    (220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228), (0, 60, 100),
    (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30), (100, 170, 30), (220, 220, 0),
    (175, 116, 175), (250, 0, 30), (165, 42, 42), (255, 77, 255), (0, 226, 252),
    (182, 182, 255), (0, 82, 0), (120, 166, 157), (110, 76, 0), (174, 57, 255), (199, 100, 0),
    (72, 0, 118), (255, 179, 240), (0, 125, 92), (209, 0, 151), (188, 208, 182), (0, 220, 176),
    (255, 99, 164), (92, 0, 73), (133, 129, 255), (78, 180, 255), (0, 228, 0), (174, 255, 243),
    (45, 89, 255), (134, 134, 103), (145, 148, 174), (255, 208, 186), (197, 226, 255),
    (171, 134, 1), (109, 63, 54), (207, 138, 255), (151, 0, 95), (9, 80, 61), (84, 105, 51),
    (74, 65, 105), (166, 196, 102), (208, 195, 210), (255, 109, 65), (0, 143, 149),
    (179, 0, 194), (209, 99, 106), (5, 121, 0), (227, 255, 205), (147, 186, 208), (153, 69, 1),
    (3, 95, 161), (163, 255, 0), (119, 0, 170), (0, 182, 199), (0, 165, 120), (183, 130, 88),
    (95, 32, 0), (130, 114, 135), (110, 129, 133), (166, 74, 118), (219, 142, 185),
    (79, 210, 114), (178, 90, 62), (65, 70, 15), (127, 167, 115), (59, 105, 106),
    (142, 108, 45), (196, 172, 0), (95, 54, 80), (128, 76, 255), (201, 57, 1), (246, 0, 122),
    (191, 162, 208),
]  # fmt: skip

VOC_PALETTE: list[RGB] = [
    (106, 0, 228), (119, 11, 32), (165, 42, 42), (0, 0, 192), (197, 226, 255), (0, 60, 100),
    (0, 0, 142), (255, 77, 255), (153, 69, 1), (120, 166, 157), (0, 182, 199), (0, 226, 252),
    (182, 182, 255), (0, 0, 230), (220, 20, 60), (163, 255, 0), (0, 82, 0), (3, 95, 161),
    (0, 80, 100), (183, 130, 88),
]  # fmt: skip

CITYSCAPES_PALETTE: list[RGB] = [
    (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
    (0, 0, 230), (119, 11, 32),
]  # fmt: skip

PALETTE_NAMES = ("coco", "voc", "citys", "random")

# mmcv's colour names, as RGB
COLOR_NAMES: dict[str, RGB] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "cyan": (0, 255, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}

_DATASET_PALETTES = {"coco": COCO_PALETTE, "voc": VOC_PALETTE, "citys": CITYSCAPES_PALETTE}


def _random_palette(num_classes: int) -> list[RGB]:
    rng = np.random.RandomState(42)
    colours = rng.randint(0, 256, size=(num_classes, 3))
    return [(int(r), int(g), int(b)) for r, g, b in colours]


def _as_rgb(value: Any, where: str) -> RGB:
    if (
        isinstance(value, Sequence | np.ndarray)
        and not isinstance(value, str)
        and len(value) == 3
        and all(isinstance(c, int | np.integer) and 0 <= int(c) <= 255 for c in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise ValueError(f"{where}: a colour must be (R, G, B) with ints in [0, 255], got {value!r}")


def get_palette(palette: Any, num_classes: int) -> list[RGB]:
    """RGB colours for ``num_classes`` classes from a palette spec (see the module docstring).

    As in v2, a dataset palette or a list comes back whole (it may be longer than needed);
    a single colour is repeated ``num_classes`` times.

    Args:
        palette: A palette name, a colour name, one RGB tuple, a list of RGB tuples, or None.
        num_classes: How many colours are needed.

    Raises:
        ValueError: an unknown name, a malformed colour, or a palette with fewer colours than
            ``num_classes`` (both numbers are named).

    Example:
        >>> len(get_palette('coco', 2)), get_palette('coco', 2)[:2]
        (80, [(220, 20, 60), (119, 11, 32)])
        >>> get_palette((1, 2, 3), 2), get_palette('red', 1)
        ([(1, 2, 3), (1, 2, 3)], [(255, 0, 0)])
    """
    if not isinstance(num_classes, int | np.integer) or num_classes < 0:
        raise ValueError(f"num_classes must be a non-negative int, got {num_classes!r}")
    if palette is None or (isinstance(palette, str) and palette == "random"):
        return _random_palette(int(num_classes))
    if isinstance(palette, str):
        if palette in _DATASET_PALETTES:
            colours = list(_DATASET_PALETTES[palette])
        elif palette in COLOR_NAMES:
            return [COLOR_NAMES[palette]] * int(num_classes)
        else:
            raise ValueError(
                f"unknown palette {palette!r}; use one of {list(PALETTE_NAMES)}, a colour name "
                f"{sorted(COLOR_NAMES)}, an (R, G, B) tuple or a list of them"
            )
    elif (
        isinstance(palette, tuple | np.ndarray)
        and len(palette) == 3
        and not any(isinstance(c, Sequence | np.ndarray) for c in palette)
    ):
        return [_as_rgb(palette, "palette")] * int(num_classes)
    elif isinstance(palette, Sequence | np.ndarray):
        colours = [_as_rgb(c, f"palette[{i}]") for i, c in enumerate(palette)]
    else:
        raise ValueError(f"cannot read a palette from {palette!r}")
    if len(colours) < num_classes:
        name = palette if isinstance(palette, str) else "the palette"
        raise ValueError(
            f"{name!s} has {len(colours)} colours but {num_classes} classes need one each; "
            "use 'random' or give a longer list"
        )
    return colours


def default_palette(num_classes: int) -> str:
    """The palette ``detforge infer`` and ``detforge serve`` draw with unless told otherwise.

    ``'coco'`` (distinct, familiar colours) while it has a colour per class, else ``'random'``.

    Example:
        >>> default_palette(20), default_palette(80), default_palette(81)
        ('coco', 'coco', 'random')
    """
    return "coco" if num_classes <= len(COCO_PALETTE) else "random"


def palette_val(palette: Sequence[RGB]) -> list[tuple[float, float, float]]:
    """RGB ints to matplotlib's ``[0, 1]`` floats (v2's ``palette_val``).

    Example:
        >>> palette_val([(255, 0, 51)])
        [(1.0, 0.0, 0.2)]
    """
    return [(r / 255, g / 255, b / 255) for r, g, b in palette]
