"""``detforge convert ...`` and its tools/dataset_converters/ shims."""

from __future__ import annotations

import json
import logging
import pickle
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.datasets.converters import cityscapes_available
from detforge.evaluation.class_names import COCO_CLASSES
from tests.datasets.converters.test_images import make_folder
from tests.datasets.converters.test_via import write_via

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "dataset_converters"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Messages logged on the ``detforge`` logger during the test."""
    handler = _Records()
    logger = logging.getLogger("detforge")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_xml_bccd(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], log_lines: list[str]
) -> None:
    bccd = shared_data / "bccd" / "BCCD"
    out = tmp_path / "trainval.json"
    code, stdout, _ = run_cli(
        capsys, "convert", "xml", str(bccd), "ImageSets/Main/trainval.txt", str(out),
        "--classes", "RBC", "WBC", "Platelets",
    )  # fmt: skip
    assert code == 0
    coco = json.loads(out.read_text())
    assert stdout == (
        f"wrote {out}: 292 images, {len(coco['annotations'])} annotations, 3 categories\n"
    )
    assert any(
        "dropped 2 boxes with zero or negative size (BloodImage_00338.xml, BloodImage_00343.xml)"
        in line
        for line in log_lines
    )
    classes = tmp_path / "classes.txt"
    classes.write_text("RBC\nWBC\nPlatelets\n")
    code, _, err = run_cli(
        capsys, "convert", "xml", str(bccd), "ImageSets/Main/trainval.txt",
        str(tmp_path / "x.pkl"), "--classes", str(classes), "--strict",
    )  # fmt: skip
    assert code == 1
    assert err.startswith("detforge convert xml: error: xml(")
    assert "boxes with zero or negative size in BloodImage_00338.xml" in err
    assert not (tmp_path / "x.pkl").exists()


def test_convert_voc(
    mmdet_test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devkit = mmdet_test_data / "VOCdevkit"
    code, stdout, _ = run_cli(
        capsys, "convert", "voc", str(devkit), "-o", str(tmp_path), "--out-format", "coco"
    )
    assert code == 0
    assert stdout.splitlines()[-1] == (
        f"wrote {tmp_path / 'voc0712_trainval.json'}: 2 images, 3 annotations, 20 categories"
    )


def test_convert_images_v2_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_folder(tmp_path / "imgs")
    code, stdout, _ = run_cli(
        capsys, "convert", "images", "--v2-layout", str(root), str(tmp_path / "classes.txt"),
        "test.json", "-e", "bmp",
    )  # fmt: skip
    assert code == 0
    out = root / ".." / "annotations" / "test.json"
    assert stdout.startswith(f"wrote {out}: 3 images, 0 annotations, 2 categories")
    names = [i["file_name"] for i in json.loads(out.read_text())["images"]]
    assert names[0] == str(root / "b.png")  # v2 prefixes file names with IMG_PATH
    code, _, err = run_cli(capsys, "convert", "images", str(root), "cats.txt", "x.json")
    assert (code, err) == (
        1,
        "detforge convert images: error: class names file not found: cats.txt\n",
    )
    code, _, err = run_cli(capsys, "convert", "images", str(root), "cats.txt", "x.txt")
    assert code == 1 and "must end with .json" in err


def test_convert_via_and_yolo(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = write_via(tmp_path / "balloon" / "train")
    code, stdout, _ = run_cli(capsys, "convert", "via", str(ann), str(tmp_path / "via.json"))
    assert code == 0 and stdout.startswith(
        f"wrote {tmp_path / 'via.json'}: 2 images, 2 annotations"
    )
    names = tmp_path / "coco.names"
    names.write_text("\n".join(COCO_CLASSES))
    img_dir = shared_data / "coco8" / "datasets" / "coco8" / "images" / "val"
    code, stdout, _ = run_cli(
        capsys, "convert", "yolo", str(img_dir), str(names), str(tmp_path / "y.json")
    )
    assert code == 0
    coco = json.loads((tmp_path / "y.json").read_text())
    assert len(coco["images"]) == 4 and len(coco["categories"]) == 80
    code, _, err = run_cli(capsys, "convert", "yolo", str(tmp_path / "nope"), str(names), "y.json")
    assert code == 1 and "image folder not found" in err


@pytest.mark.skipif(cityscapes_available(), reason="cityscapesscripts is installed")
def test_convert_cityscapes_needs_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "convert", "cityscapes", str(tmp_path))
    assert code == 1
    assert "cityscapesscripts" in err and "pip install cityscapesscripts" in err


def test_convert_needs_a_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["convert"])
    assert exc.value.code == 2
    assert "FORMAT" in capsys.readouterr().err


def test_pascal_voc_shim_subprocess(mmdet_test_data: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "tools/dataset_converters/pascal_voc.py",
         str(mmdet_test_data / "VOCdevkit"), "-o", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "voc0712_trainval.pkl", "voc07_test.pkl", "voc07_trainval.pkl",
        "voc12_test.pkl", "voc12_trainval.pkl",
    ]  # fmt: skip
    with open(tmp_path / "voc12_test.pkl", "rb") as handle:
        assert pickle.load(handle)[0]["ann"]["labels"].tolist() == [18]  # train
    assert "wrote" in proc.stdout


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        ("balloon2coco.py", ["{via}", "{tmp}/b.json", "{tmp}/balloon/train"], "b.json"),
        ("images2coco.py", ["{tmp}/imgs", "{tmp}/classes.txt", "t.json"], "annotations/t.json"),
        ("yolo2coco.py", ["{tmp}/yolo", "{tmp}/names.txt", "{tmp}/y.json"], "y.json"),
    ],
)
def test_shims_forward_argv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    script: str,
    argv: list[str],
    expected: str,
) -> None:
    via = write_via(tmp_path / "balloon" / "train")
    make_folder(tmp_path / "imgs")
    (tmp_path / "yolo").mkdir()
    (tmp_path / "imgs" / "b.png").rename(tmp_path / "yolo" / "b.png")
    (tmp_path / "yolo" / "b.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "names.txt").write_text("thing\n")
    args = [a.format(tmp=tmp_path, via=via) for a in argv]
    monkeypatch.setattr(sys, "argv", [str(TOOLS / script), *args])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(TOOLS / script), run_name="__main__")
    assert exc.value.code == 0, capsys.readouterr().err
    assert (tmp_path / expected).is_file()
