"""``tools/misc/download_dataset.py``: offline, it prints where to get each dataset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_download_dataset_script_prints_sources_and_layout_offline() -> None:
    script = ROOT / "tools" / "misc" / "download_dataset.py"
    for name, expect in (("coco2017", "annotations/instances_val2017.json"),
                         ("bccd", "BCCD/ImageSets/Main"), ("lvis", "annotations/lvis_v1_val.json"),
                         ("voc2007", "VOCdevkit/VOC2007/JPEGImages")):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, str(script), "--dataset-name", name, "--save-dir", "/data/x"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert f"/data/x/{expect}" in proc.stdout
        assert "downloads nothing" in proc.stdout
    proc = subprocess.run([sys.executable, str(script), "--dataset-name", "imagenet"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "coco2017" in proc.stderr
