"""v2's ``Corrupt`` pipeline step: registered, the same pixels as ``corrupt``, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detforge.datasets.transforms import Compose
from detforge.datasets.transforms.corrupt import Corrupt
from detforge.utils.image import imread
from detforge.utils.image.corruptions import corrupt


@pytest.fixture(scope="module")
def demo(shared_data: Path) -> np.ndarray:
    img = imread(shared_data / "mmdet_testdata" / "demo" / "demo.jpg")
    return np.ascontiguousarray(img[::2, ::2])


def test_corrupt_step_in_a_pipeline(demo: np.ndarray) -> None:
    pipeline = Compose([dict(type="Corrupt", corruption="jpeg_compression", severity=5)])
    out = pipeline(dict(img=demo.copy()))
    np.testing.assert_array_equal(out["img"], corrupt(demo, "jpeg_compression", 5))
    assert "jpeg_compression" in repr(pipeline)
    assert Corrupt(corruption="fog", severity=0)(dict(img=demo))["img"] is demo
    with pytest.raises(KeyError, match="LoadImageFromFile"):
        Corrupt(corruption="fog")(dict())
    with pytest.raises(KeyError, match="'smoke'"):
        Corrupt(corruption="smoke")
    with pytest.raises(ValueError, match=r"0\.\.5, got 7"):
        Corrupt(corruption="fog", severity=7)


def test_transforms_do_not_import_analysis() -> None:
    code = (
        "import sys, detforge.datasets.transforms as t\n"
        "from detforge.registry import TRANSFORMS\n"
        "assert TRANSFORMS.get('Corrupt') is t.corrupt.Corrupt\n"
        "print(sorted(m for m in sys.modules if m.startswith('detforge.analysis')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
