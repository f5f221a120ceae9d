"""``detforge print-config`` and its v2-compatible shim ``tools/print_config.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.config import Config
from tests.config.test_loading import CFG_OPTIONS, USER_CONFIG

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_print_config_acceptance(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_OPTIONS", CFG_OPTIONS)
    code, out, err = run_cli(
        capsys,
        "print-config",
        str(USER_CONFIG),
        "--cfg-options",
        "model.roi_head.bbox_head.num_classes=2",
    )
    assert code == 0
    printed = Config.fromstring(out, ".py")
    assert printed.model.train_cfg.rpn_proposal.max_per_img == 1000
    assert "train_cfg" not in printed
    assert printed.model.roi_head.bbox_head.num_classes == 2
    assert "top-level train_cfg merged into model.train_cfg" in err
    assert "model.pretrained='torchvision://resnet50' -> model.backbone.init_cfg" in err


def test_print_config_raw_keeps_old_spellings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_OPTIONS", CFG_OPTIONS)
    code, out, _ = run_cli(capsys, "print-config", str(USER_CONFIG), "--raw")
    assert code == 0
    printed = Config.fromstring(out, ".py")
    assert printed.train_cfg.rpn_proposal.max_num == 1000
    assert printed.model.pretrained == "torchvision://resnet50"


def test_print_config_diff(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "print-config", str(USER_CONFIG), "--diff")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("5 change(s) relative to its _base_ chain")
    assert (
        "~ data.train.ann_file: 'data/coco/annotations/instances_train2017.json' -> "
        "'data/my_dataset/annotations/train.json'"
    ) in lines
    assert "~ lr_config.policy: 'step' -> 'CosineAnnealing'" in lines
    assert "- lr_config.step = [8, 11]" in lines
    assert "+ lr_config.min_lr_ratio = 0.01" in lines
    assert "~ lr_config.warmup_iters: 500 -> 200" in lines
    assert len(lines) == 1 + 5


def test_options_alias_and_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "print-config", str(USER_CONFIG), "--options", "optimizer.lr=0.5"
    )
    assert code == 0 and "lr=0.5" in out and "deprecated" in err
    with pytest.raises(SystemExit, match="cannot be both specified"):
        main(["print-config", str(USER_CONFIG), "--options", "a=1", "--cfg-options", "b=2"])


def test_errors_are_one_clean_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "print-config", str(tmp_path / "nope.py"))
    assert code == 1 and "does not exist" in err and "Traceback" not in err
    monkeypatch.setenv("CFG_OPTIONS", "{'a': open('x')}")
    code, _, err = run_cli(capsys, "print-config", str(USER_CONFIG))
    assert code == 1 and "open('x')" in err and "CFG_OPTIONS" in err


def test_shim_and_module_entry_points() -> None:
    config = str(USER_CONFIG)
    for cmd in (
        [sys.executable, str(ROOT / "tools" / "print_config.py"), config],
        [sys.executable, "-m", "detforge", "print-config", config],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert Config.fromstring(proc.stdout, ".py").model.type == "FasterRCNN"


def test_the_command_line_starts_without_torch() -> None:
    """`detforge print-config`/`--help` stay fast: the entry point imports torch only in the
    subcommands that run a model."""
    code = "import sys, detforge.cli.main; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
