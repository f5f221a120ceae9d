"""InstaBoost on a stand-in ``instaboostfast`` module (the package is optional and not
installed in the dev environment), and the error without it."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest

from detforge.datasets.transforms.compose import Compose
from detforge.datasets.transforms.instaboost import InstaBoost
from detforge.errors import MissingDependencyError


def _fake_instaboost(calls: list[Any]) -> types.ModuleType:
    """A module with instaboostfast's two entry points: ``get_new_data`` moves every instance
    2 px right, empties the box of the last one and brightens the image."""
    module = types.ModuleType("instaboostfast")

    class InstaBoostConfig:
        def __init__(self, *args: Any) -> None:
            self.args = args

    def get_new_data(anns: list[dict[str, Any]], img: np.ndarray, cfg: Any, background: Any):
        calls.append((anns, img.dtype, cfg, background))
        out = [dict(a, bbox=[a["bbox"][0] + 2, *a["bbox"][1:]]) for a in anns]
        out[-1]["bbox"] = [0, 0, 0, 5]
        return out, img + 1

    module.InstaBoostConfig = InstaBoostConfig  # type: ignore[attr-defined]
    module.get_new_data = get_new_data  # type: ignore[attr-defined]
    return module


def _results() -> dict[str, Any]:
    return {
        "img": np.zeros((20, 30, 3), np.float32),
        "ann_info": {
            "bboxes": np.array([[1, 2, 11, 12], [5, 5, 9, 15]], np.float32),
            "labels": np.array([3, 7], np.int64),
            "masks": [[[1, 2, 11, 2, 11, 12]], [[5, 5, 9, 5, 9, 15]]],
        },
    }


def test_augments_with_probability_aug_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setitem(sys.modules, "instaboostfast", _fake_instaboost(calls))
    always = Compose([dict(type="InstaBoost", aug_ratio=1.0, scale=(0.9, 1.1))])
    out = always(_results())
    assert len(calls) == 1
    anns, dtype, cfg, background = calls[0]
    assert dtype == np.uint8 and background is None
    assert cfg.args == (("normal", "horizontal", "skip"), (1, 0, 0), (0.9, 1.1), 15, 15, (-1, 1),
                        0.5, False)  # fmt: skip
    assert anns[0]["bbox"] == [1, 2, 10, 10] and anns[1]["category_id"] == 7
    info = out["ann_info"]
    assert info["bboxes"].tolist() == [[3, 2, 13, 12]]  # shifted; the emptied one dropped
    assert info["labels"].tolist() == [3] and info["masks"] == [[[1, 2, 11, 2, 11, 12]]]
    assert out["img"].dtype == np.float32 and float(out["img"].max()) == 1.0

    never = InstaBoost(aug_ratio=0.0)
    out = never(_results())
    assert len(calls) == 1  # not augmented: only converted back and forth
    assert out["ann_info"]["bboxes"].tolist() == _results()["ann_info"]["bboxes"].tolist()
    assert "aug_ratio=0.0" in repr(never)
    with pytest.raises(ValueError, match="3 action_candidate but 2 action_prob"):
        InstaBoost(action_prob=(1, 0))


def test_without_the_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "instaboostfast", None)  # import fails
    with pytest.raises(MissingDependencyError, match="pip install instaboostfast"):
        Compose([dict(type="InstaBoost")])
