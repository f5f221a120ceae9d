"""Commands refuse a checkpoint that does not fit the model (``--allow-partial`` opts out),
``load_from`` fails only when nothing fits, and ``--auto-resume`` refuses a ``latest.pth``
directory before training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detforge.cli.main import main
from tests.tiny_demo import demo_config_text, make_synthetic_coco

pytestmark = pytest.mark.usefixtures("restore_log_handlers")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny two-class RetinaNet config and checkpoints that do not fit it: one of a
    five-class model and an empty one."""
    from detforge.apis.inference import init_detector
    from detforge.engine.checkpoint_save import save_checkpoint

    root = tmp_path_factory.mktemp("fit")
    paths = make_synthetic_coco(root / "data", num_train=2, num_val=1, size=64, seed=0)
    config = root / "tiny_retina.py"
    config.write_text(demo_config_text(paths["root"], max_epochs=1, samples_per_gpu=2, img_size=64))
    five = init_detector(config, None, device="cpu", cfg_options={"model.bbox_head.num_classes": 5})
    five_classes = root / "five_classes.pth"
    save_checkpoint(five, five_classes)
    empty = root / "empty.pth"
    torch.save({"meta": {}, "state_dict": {}}, empty)
    image = root / "one.png"
    cv2.imwrite(str(image), np.full((48, 64, 3), 90, np.uint8))
    return dict(config=config, five_classes=five_classes, empty=empty, image=image, root=root)


def test_test_infer_serve_refuse_another_class_count(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, checkpoint = str(setup["config"]), str(setup["five_classes"])
    out = str(tmp_path / "r.pkl")
    commands = {
        "test": ["test", config, checkpoint, "--out", out, "--device", "cpu"],
        "infer": ["infer", str(setup["image"]), config, checkpoint, "--device", "cpu",
                  "--out-dir", str(tmp_path / "infer")],
        "serve": ["serve", config, checkpoint, "--device", "cpu"],
    }  # fmt: skip
    if importlib.util.find_spec("uvicorn") is None:  # the serve extra is not installed
        del commands["serve"]
    for name, argv in commands.items():
        capsys.readouterr()
        assert main(argv) == 1, name
        err = capsys.readouterr().err
        assert f"{checkpoint} does not fit RetinaNet" in err, (name, err[-2000:])
        assert "shape mismatch (2):\n    bbox_head.retina_cls.bias: checkpoint (45,)" in err, err
        assert "--allow-partial" in err
    assert not (tmp_path / "r.pkl").exists() and not (tmp_path / "infer").exists()
    assert main([*commands["test"], "--allow-partial"]) == 0
    assert (tmp_path / "r.pkl").is_file()
    assert main([*commands["infer"], "--allow-partial"]) == 0


def test_load_from_warns_on_the_head_and_fails_when_nothing_fits(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def train(load_from: Path, work_dir: Path) -> int:
        return main(["train", str(setup["config"]), "--work-dir", str(work_dir),
                     "--device", "cpu", "--seed", "0",
                     "--cfg-options", f"load_from={load_from}"])  # fmt: skip

    capsys.readouterr()
    assert train(setup["empty"], tmp_path / "empty") == 1
    err = capsys.readouterr().err
    assert f"{setup['empty']} does not fit RetinaNet (0 of" in err
    assert not (tmp_path / "empty" / "epoch_1.pth").exists()
    assert train(setup["five_classes"], tmp_path / "five") == 0
    err = capsys.readouterr().err
    assert "2 of another shape" in err and "retina_cls.bias: checkpoint (45,) vs model (18,)" in err
    assert (tmp_path / "five" / "epoch_1.pth").is_file()


def test_auto_resume_refuses_a_latest_directory_before_training(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work_dir = tmp_path / "work"
    (work_dir / "latest.pth").mkdir(parents=True)
    capsys.readouterr()
    code = main(["train", str(setup["config"]), "--work-dir", str(work_dir), "--device", "cpu",
                 "--auto-resume"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"{work_dir / 'latest.pth'} is a directory" in err
    assert "Epoch [1]" not in err  # not one iteration trained
    left = sorted(p.name for p in work_dir.iterdir() if p.suffix in (".pth", ".tmp"))
    assert left == ["latest.pth"]
