"""Full-size v2.28.2 models of the plugin, gn+ws, DetectoRS, deformable-RoI-pooling, C4 and
MMSyncBN families have exactly MMDetection's state_dict layout (keys in order, shapes, parameter
counts). Each layout file (tests/data/goldens/<fixture>/layout_*.json, written by
tools/goldens/<fixture>.py with MMDetection 3.3) carries the merged v2 ``model`` dict it was
built from; for the DetectoRS HTC configs only the backbone and neck are compared (HTC is
another issue's). The models are built on the meta device (keys and shapes only)."""

from __future__ import annotations

import pytest
import torch

from tests.models.v2_goldens import GOLDENS, assert_layout, build_v2_model, load

LAYOUTS = sorted(
    (path.parent.name, path.name)
    for fixture in ("plugins", "conv_ws", "detectors", "deform_roi_pool", "shared_head", "mmsyncbn")
    for path in (GOLDENS / fixture).glob("layout_*.json")
)


def test_every_family_has_layouts() -> None:
    assert {name for name, _ in LAYOUTS} == {
        "plugins",
        "conv_ws",
        "detectors",
        "deform_roi_pool",
        "shared_head",
        "mmsyncbn",
    }


@pytest.mark.parametrize(("fixture", "file"), LAYOUTS)
def test_layout(fixture: str, file: str) -> None:
    with torch.device("meta"):  # shapes only: no memory, no random init (fast)
        model = build_v2_model(fixture, file)
    prefixes = tuple(load(fixture, file).get("prefixes", ()))
    assert_layout(model, fixture, file, prefixes)
