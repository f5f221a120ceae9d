"""``detforge get-flops`` and ``tools/analysis_tools/get_flops.py``: v2's printout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detforge.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
RETINANET = ROOT / "configs" / "retinanet" / "retinanet_r50_fpn_1x_coco.py"


def test_retinanet_report_in_v2_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get-flops", str(RETINANET)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    start = lines.index("=" * 30)
    assert lines[start + 1] == "Input shape: (3, 1280, 800)"
    assert lines[start + 2] == "Flops: 239.32 GFLOPs"  # 239,316,500,520 counted
    assert lines[start + 3] == "Params: 37.74 M"
    assert lines[start + 4] == "Params (exact): 37,743,348 trainable, 37,968,692 in total"
    assert lines[start + 5] == "=" * 30
    assert lines[start + 6].startswith("!!!Please be cautious if you use the results in papers")
    assert "Use size divisor" not in "\n".join(lines)


def test_tools_script_pads_to_the_size_divisor_and_takes_cfg_options() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "analysis_tools" / "get_flops.py"), str(RETINANET),
         "--shape", "401", "600", "--cfg-options", "model.bbox_head.num_classes=3"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = proc.stdout
    assert "Use size divisor set input shape from (3, 401, 600) to (3, 416, 608)" in out
    assert "Input shape: (3, 416, 608)" in out
    # 3 classes instead of 80: retina_cls shrinks from 720 to 27 output channels (3x3x256 each)
    removed = (720 - 27) * (256 * 9 + 1)
    assert f"Params (exact): {37_743_348 - removed:,} trainable" in out


def test_bad_shape_is_refused() -> None:
    with pytest.raises(SystemExit, match="--shape"):
        main(["get-flops", str(RETINANET), "--shape", "1", "2", "3"])
