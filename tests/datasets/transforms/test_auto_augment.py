"""Tests of ``AutoAugment`` and its level-driven colour transforms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detforge.datasets.transforms._utils import enhance_level_to_value, level_to_value
from detforge.datasets.transforms.auto_augment import (
    AutoAugment,
    BrightnessTransform,
    ColorTransform,
    ContrastTransform,
    EqualizeTransform,
)
from detforge.registry import TRANSFORMS, build_module
from detforge.utils.image import adjust_brightness, adjust_color, adjust_contrast, imequalize
from tests.datasets.transforms._helpers import Results, make_sample


def test_level_mappings() -> None:
    assert level_to_value(10, 0.3) == pytest.approx(0.3)
    assert level_to_value(0, 30) == 0
    assert enhance_level_to_value(0) == pytest.approx(0.1)
    assert enhance_level_to_value(10) == pytest.approx(1.9)


class _Mark:
    """A test transform recording which policy ran."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __call__(self, results: Results) -> Results:
        results.setdefault("picked", []).append(self.tag)
        return results


def test_auto_augment_picks_one_policy_like_np_random_choice() -> None:
    policies = [
        [dict(type=_Mark, tag="a"), dict(type=_Mark, tag="a2")],
        [dict(type=_Mark, tag="b")],
    ]
    t = AutoAugment(policies)
    seen = set()
    for seed in range(10):
        np.random.seed(seed)
        picked = t({})["picked"]
        np.random.seed(seed)
        expected = [["a", "a2"], ["b"]][np.random.choice(2)]
        assert picked == expected
        seen.add(picked[0])
    assert seen == {"a", "b"}
    assert repr(AutoAugment([[dict(type="EqualizeTransform")]])) == (
        "AutoAugment(policies=[[{'type': 'EqualizeTransform'}]])"
    )


@pytest.mark.parametrize(
    "policies",
    [[], "abc", [[]], [dict(type="Shear")], [[dict(level=1)]], [["Shear"]]],
)
def test_auto_augment_validates_policies(policies: Any) -> None:
    with pytest.raises(AssertionError):
        AutoAugment(policies)


@pytest.mark.parametrize(
    "name",
    ["Shear", "Rotate", "Translate", "ColorTransform", "BrightnessTransform", "ContrastTransform"],
)
def test_level_out_of_range_asserts(name: str) -> None:
    for level in (-1, 10.5, "3"):
        with pytest.raises(AssertionError, match="level"):
            build_module(dict(type=name, level=level), TRANSFORMS)
    with pytest.raises(AssertionError, match="prob"):
        build_module(dict(type=name, level=3, prob=1.5), TRANSFORMS)


# ----------------------------------------------------------------------------- color transforms


def test_color_transforms_follow_image_functions() -> None:
    img = make_sample()["img"]
    for cls, fn in ((BrightnessTransform, adjust_brightness), (ContrastTransform, adjust_contrast)):
        out = cls(level=0, prob=1.0)({"img": img.copy()})["img"]
        np.testing.assert_array_equal(out, fn(img, 0.1))
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(cls(level=9, prob=0.0)({"img": img.copy()})["img"], img)
    np.testing.assert_array_equal(ColorTransform(level=5, prob=1.0)({"img": img})["img"], img)
    out = ColorTransform(level=0, prob=1.0)({"img": img})["img"]
    np.testing.assert_array_equal(out, adjust_color(img, 0.1))
    out = EqualizeTransform(prob=1.0)({"img": img.copy()})["img"]
    np.testing.assert_array_equal(out, imequalize(img))


def test_color_transform_reprs() -> None:
    assert repr(ColorTransform(level=3)) == "ColorTransform(level=3, prob=0.5)"
    assert repr(BrightnessTransform(level=3, prob=0.2)) == "BrightnessTransform(level=3, prob=0.2)"
    assert repr(ContrastTransform(level=1)) == "ContrastTransform(level=1, prob=0.5)"
    assert repr(EqualizeTransform()) == "EqualizeTransform(prob=0.5)"
