"""``detforge`` error handling: the project's own errors and OSErrors are one line and exit 1
(a traceback only with ``--debug`` or ``DETFORGE_DEBUG=1``); ``test`` skips an unreadable image,
counts it and keeps it with no detections (``--strict`` stops at it)."""

from __future__ import annotations

import errno
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from detforge.cli import print_config
from detforge.cli.main import main
from detforge.datasets import DatasetError
from detforge.utils import fileio
from detforge.utils.image import ImageLoadError
from tests.tiny_demo import TINY_CLASSES, demo_config_text, make_synthetic_coco


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny RetinaNet config (3 val images, the second one corrupt) and an untrained
    checkpoint of it."""
    from detforge.apis.inference import init_detector
    from detforge.engine.checkpoint_save import save_checkpoint

    root = tmp_path_factory.mktemp("cli_errors")
    paths = make_synthetic_coco(root / "data", num_train=2, num_val=3, size=64, seed=0)
    config = root / "tiny_retina.py"
    config.write_text(demo_config_text(paths["root"], max_epochs=1, samples_per_gpu=2, img_size=64))
    checkpoint = root / "init.pth"
    save_checkpoint(init_detector(config, None, device="cpu"), checkpoint,
                    meta=dict(CLASSES=TINY_CLASSES))  # fmt: skip
    names = [img["file_name"] for img in json.loads(paths["val"].read_text())["images"]]
    (paths["images"] / names[1]).write_bytes(b"this is not a PNG")
    return dict(config=str(config), checkpoint=str(checkpoint), names=names)


def _one_error_line(err: str, command: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"detforge {command}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def _test_args(tiny: dict[str, Any], *extra: str) -> list[str]:
    return ["test", tiny["config"], tiny["checkpoint"], "--device", "cpu", *extra]


# ------------------------------------------------------------- the project's own errors


def test_dataset_error_is_one_line(tiny: dict[str, Any], capsys: Any) -> None:
    petrel = "data.test.file_client_args.backend=petrel"
    code = main(_test_args(tiny, "--eval", "bbox", "--cfg-options", petrel))
    line = _one_error_line(capsys.readouterr().err, "test")
    assert code == 1
    assert "file_client_args backend 'petrel' is not supported" in line


def test_unreadable_image_with_strict_is_one_line(tiny: dict[str, Any], capsys: Any) -> None:
    code = main(_test_args(tiny, "--eval", "bbox", "--strict"))
    line = _one_error_line(capsys.readouterr().err, "test")
    assert code == 1
    assert tiny["names"][1] in line and "could not decode image" in line


def test_checkpoint_error_is_one_line(tiny: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    code = main(["test", tiny["config"], str(broken), "--eval", "bbox", "--device", "cpu"])
    line = _one_error_line(capsys.readouterr().err, "test")
    assert code == 1 and f"cannot read checkpoint {broken}" in line


# ------------------------------------------------------------------------------ OSErrors


def test_work_dir_below_a_file_is_one_line(tiny: dict[str, Any], tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = main(["train", tiny["config"], "--work-dir", str(blocker / "work"), "--device", "cpu"])
    line = _one_error_line(capsys.readouterr().err, "train")
    assert code == 1
    assert line == f"detforge train: error: {blocker / 'work'}: Not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_work_dir_is_one_line(tiny: dict[str, Any], tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o555)
    try:
        code = main(["train", tiny["config"], "--work-dir", str(work), "--device", "cpu"])
    finally:
        work.chmod(0o755)
    line = _one_error_line(capsys.readouterr().err, "train")
    assert code == 1 and str(work) in line and "Permission denied" in line


def test_read_only_file_system_is_one_line(
    tiny: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Works as root too: the temporary file cannot be created, as on a read-only mount."""

    def read_only(prefix: str, suffix: str, dir: Path) -> tuple[int, str]:
        path = os.path.join(dir, f"{prefix}x{suffix}")
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    work = tmp_path / "work"
    code = main(["train", tiny["config"], "--work-dir", str(work), "--device", "cpu"])
    line = _one_error_line(capsys.readouterr().err, "train")
    assert code == 1
    assert line == (
        f"detforge train: error: could not write {work / 'tiny_retina.py'}: "
        f"{os.strerror(errno.EROFS)}"
    )


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file written through ``atomic_write`` goes to ``/dev/full``: a real ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")

    def to_dev_full(prefix: str, suffix: str, dir: Path) -> tuple[int, str]:
        return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}x{suffix}")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", to_dev_full)


def test_full_disk_is_one_line_naming_the_file(
    tiny: dict[str, Any], tmp_path: Path, full_disk: None, capsys: Any
) -> None:
    out = tmp_path / "results.pkl"
    code = main(_test_args(tiny, "--out", str(out)))
    line = _one_error_line(capsys.readouterr().err, "test")
    assert code == 1
    assert line == f"detforge test: error: could not write {out}: {os.strerror(errno.ENOSPC)}"
    assert not out.exists()


# ------------------------------------------------------------------- --debug, bugs, ^C


def test_debug_flag_or_env_shows_the_traceback(
    tiny: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    args = ["train", tiny["config"], "--work-dir", str(blocker / "w"), "--device", "cpu"]
    with pytest.raises(NotADirectoryError):
        main(["--debug", *args])
    with pytest.raises(NotADirectoryError):
        main([*args, "--debug"])
    with pytest.raises(DatasetError, match="petrel"):
        main([*_test_args(tiny, "--eval", "bbox", "--debug"), "--cfg-options",
              "data.test.file_client_args.backend=petrel"])  # fmt: skip
    monkeypatch.setenv("DETFORGE_DEBUG", "1")
    with pytest.raises(ImageLoadError, match=tiny["names"][1]):
        main(_test_args(tiny, "--eval", "bbox", "--strict"))


def test_nested_subcommand_names_itself_and_accepts_debug(tmp_path: Path, capsys: Any) -> None:
    args = ["convert", "images", str(tmp_path / "nowhere"), "cats.txt", str(tmp_path / "o.json")]
    assert main(args) == 1
    line = _one_error_line(capsys.readouterr().err, "convert images")
    assert line.endswith(f"image folder not found: {tmp_path / 'nowhere'}")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        main([*args, "--debug"])


def test_other_exceptions_are_bugs_and_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(args: Any) -> int:
        raise TypeError("a bug")

    monkeypatch.setattr(print_config, "run", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["print-config", "x.py"])


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(print_config, "run", interrupted)
    assert main(["print-config", "x.py"]) == 130
    assert capsys.readouterr().err == "detforge print-config: interrupted\n"


# --------------------------------------------------------------- test: unreadable images


def test_test_skips_an_unreadable_image_and_keeps_its_place(
    tiny: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "results.pkl"
    options = ["model.test_cfg.score_thr=0.0", "data.test.samples_per_gpu=2"]
    code = main(_test_args(tiny, "--out", str(out), "--eval", "bbox", "--cfg-options", *options))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    bad = tiny["names"][1]
    warnings = [line for line in captured.err.splitlines() if "skipping unreadable image" in line]
    assert len(warnings) == 1 and bad in warnings[0]
    assert f"skipped 1 unreadable images ({bad}); each is kept with an empty" in captured.err
    assert "bbox_mAP" in captured.out
    with open(out, "rb") as f:
        results = pickle.load(f)
    assert len(results) == 3  # one per image of the annotation file, in its order (the first
    # batch held images 0 and 1: the model ran on image 0 alone)
    assert [arr.shape for arr in results[1]] == [(0, 5), (0, 5)]
    assert all(len(results[i]) == 2 and sum(len(a) for a in results[i]) > 0 for i in (0, 2))
