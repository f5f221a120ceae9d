"""v2 palette semantics: names, colour names, single colours, lists, the seeded random one."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.visualization import (
    CITYSCAPES_PALETTE,
    COCO_PALETTE,
    VOC_PALETTE,
    default_palette,
    get_palette,
    palette_val,
)


def test_dataset_palettes() -> None:
    assert len(COCO_PALETTE) == 80 and len(set(COCO_PALETTE)) == 80
    assert len(VOC_PALETTE) == 20 and len(CITYSCAPES_PALETTE) == 8
    assert get_palette("coco", 80) == COCO_PALETTE
    assert get_palette("voc", 3)[:3] == [(106, 0, 228), (119, 11, 32), (165, 42, 42)]
    assert get_palette("citys", 8)[1] == (255, 0, 0)
    assert COCO_PALETTE[-1] == (191, 162, 208)


def test_random_palette_is_seeded_and_prefix_stable() -> None:
    a, b = get_palette("random", 5), get_palette(None, 90)
    assert a == b[:5] and len(b) == 90
    assert a[0] == (102, 179, 92)  # v2: np.random.seed(42); randint(0, 256, (n, 3))
    state = np.random.get_state()[1].copy()
    get_palette("random", 3)
    assert (np.random.get_state()[1] == state).all()  # the global RNG is untouched


def test_single_colours_and_lists() -> None:
    assert get_palette((1, 2, 3), 3) == [(1, 2, 3)] * 3
    assert get_palette("green", 2) == [(0, 255, 0)] * 2
    assert get_palette([(1, 2, 3), [4, 5, 6]], 2) == [(1, 2, 3), (4, 5, 6)]
    assert palette_val([(255, 0, 51)]) == [(1.0, 0.0, 0.2)]


@pytest.mark.parametrize(
    ("spec", "n", "message"),
    [
        ("voc", 21, "20 colours but 21 classes"),
        ([(1, 2, 3)], 2, "1 colours but 2 classes"),
        ("pastel", 2, "unknown palette 'pastel'"),
        ([(1, 2, 300)], 1, r"palette\[0\].*\(1, 2, 300\)"),
        (3.5, 1, "cannot read a palette"),
    ],
)
def test_bad_palettes_are_named(spec: object, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_palette(spec, n)


def test_default_palette_is_coco_while_it_has_a_colour_per_class() -> None:
    assert [default_palette(n) for n in (1, 80, 81, 1203)] == ["coco", "coco", "random", "random"]
    assert len(get_palette(default_palette(1203), 1203)) == 1203
