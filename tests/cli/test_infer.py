"""``detforge infer`` on folders, lists, shards and videos, and the v2 demo scripts."""

from __future__ import annotations

import json
import runpy
import sys
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detforge.cli.main import main
from tests.apis.tiny_detector import write_tiny_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("restore_log_handlers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    config, weights = write_tiny_config(tmp_path_factory.mktemp("cfg"), "gfl")
    return str(config), str(weights)


@pytest.fixture()
def folder(tmp_path: Path, shared_data: Path) -> Path:
    """Three small real images (one in a sub-folder), a corrupt JPEG and a non-image file."""
    dog = cv2.imread(str(shared_data / "demo_images/yolox/assets/dog.jpg"))
    demo = cv2.imread(str(shared_data / "mmdet_testdata/demo/demo.jpg"))
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "a_dog.jpg"), cv2.resize(dog, (192, 144)))
    cv2.imwrite(str(root / "b_demo.png"), cv2.resize(demo, (160, 107)))
    cv2.imwrite(str(root / "sub" / "c_crop.jpg"), demo[100:250, 200:400])
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _infer(*args: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["infer", *args, "--device", "cpu"])


def test_folder_results_drawings_errors_and_resume(
    tiny: tuple[str, str], folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.apis import inference_detector, init_detector

    out = tmp_path / "out"
    args = (str(folder), *tiny, "--out-dir", str(out), "--batch-size", "2", "--score-thr", "0.2")
    assert _infer(*args) == 1  # broken.jpg failed
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "3 images" in captured.out
    assert "1 failed" in captured.out
    lines = _lines(out / "results.jsonl")
    assert [Path(x["file"]).name for x in lines] == ["a_dog.jpg", "b_demo.png", "c_crop.jpg"]
    assert [(x["width"], x["height"]) for x in lines] == [(192, 144), (160, 107), (200, 150)]
    errors = _lines(out / "errors.jsonl")
    assert [Path(e["file"]).name for e in errors] == ["broken.jpg"]
    # detections are the model's own, above the threshold, best first, with COCO names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = init_detector(tiny[0], tiny[1], device="cpu")
    result = inference_detector(model, str(folder / "a_dog.jpg"))
    expected = sorted(
        (row for label, rows in enumerate(result) for row in rows if row[4] > 0.2),
        key=lambda row: -row[4],
    )
    dets = lines[0]["detections"]
    assert len(dets) == len(expected) > 0
    np.testing.assert_allclose([d["bbox"] for d in dets], [r[:4] for r in expected], atol=0.01)
    assert all(d["class"] == model.CLASSES[d["label"]] and d["score"] > 0.2 for d in dets)
    drawn = cv2.imread(str(out / "vis" / "sub" / "c_crop.jpg"))
    assert drawn.shape == (150, 200, 3)
    # a re-run only does what is new
    cv2.imwrite(str(folder / "d_new.png"), np.full((90, 120, 3), 80, np.uint8))
    assert _infer(*args) == 1  # broken.jpg again
    assert "1 images" in capsys.readouterr().out
    names = [Path(x["file"]).name for x in _lines(out / "results.jsonl")]
    assert names == ["a_dog.jpg", "b_demo.png", "c_crop.jpg", "d_new.png"]


def test_only_input_errors_are_skipped(
    tiny: tuple[str, str], folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad input fails alone (its batch is retried image by image); anything else stops."""
    import detforge.apis.inference as inference

    (folder / "broken.jpg").unlink()
    real = inference.inference_detector
    calls: list[int] = []

    def refuses_b_demo(model: Any, imgs: Any) -> Any:
        calls.append(len(imgs))
        if any(img.shape[:2] == (107, 160) for img in imgs):
            raise ValueError("image 0: this shape is refused")
        return real(model, imgs)

    monkeypatch.setattr(inference, "inference_detector", refuses_b_demo)
    out = tmp_path / "out"
    assert _infer(str(folder), *tiny, "--out-dir", str(out), "--batch-size", "2") == 1
    assert calls == [2, 1, 1, 1]  # [a, b] fails, then a and b alone, then [c]
    assert [Path(x["file"]).name for x in _lines(out / "results.jsonl")] == [
        "a_dog.jpg",
        "c_crop.jpg",
    ]
    errors = _lines(out / "errors.jsonl")
    assert [(Path(e["file"]).name, e["error"]) for e in errors] == [
        ("b_demo.png", "image 0: this shape is refused")
    ]

    def out_of_memory(model: Any, imgs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(inference, "inference_detector", out_of_memory)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        _infer(str(folder), *tiny, "--out-dir", str(tmp_path / "oom"))
    assert not (tmp_path / "oom" / "errors.jsonl").exists()


def test_out_dir_inside_the_input_folder_is_not_read_back(
    tiny: tuple[str, str], folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = folder / "out"
    args = (str(folder), *tiny, "--out-dir", str(out))
    assert _infer(*args) == 1  # broken.jpg
    assert sorted(p.name for p in (out / "vis").rglob("*.*")) == [
        "a_dog.jpg",
        "b_demo.png",
        "c_crop.jpg",
    ]
    capsys.readouterr()
    assert _infer(*args) == 1
    assert "0 images" in capsys.readouterr().out  # its own drawings are not new inputs
    assert not (out / "vis" / "out").exists()
    assert len(_lines(out / "results.jsonl")) == 3


def test_list_naming_images_in_other_folders_keeps_drawings_apart(
    tiny: tuple[str, str], tmp_path: Path, shared_data: Path
) -> None:
    demo = cv2.imread(str(shared_data / "mmdet_testdata/demo/demo.jpg"))
    for name, size in (("a", (96, 64)), ("b", (80, 120))):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "x.jpg"), cv2.resize(demo, size))
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "list.txt"
    listing.write_text(f"{tmp_path / 'a' / 'x.jpg'}\n../b/x.jpg\n")
    out = tmp_path / "out"
    assert _infer(str(listing), *tiny, "--out-dir", str(out)) == 0
    assert cv2.imread(str(out / "vis" / "a" / "x.jpg")).shape == (64, 96, 3)
    assert cv2.imread(str(out / "vis" / "b" / "x.jpg")).shape == (120, 80, 3)
    assert sorted(p.relative_to(out / "vis").as_posix() for p in (out / "vis").rglob("*.jpg")) == [
        "a/x.jpg",
        "b/x.jpg",
    ]


def test_shards_under_torchrun_env_and_list_file(
    tiny: tuple[str, str], folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = folder / "list.txt"
    listing.write_text("# two images\na_dog.jpg\n\nsub/c_crop.jpg\n" + str(folder / "b_demo.png"))
    out = tmp_path / "sharded"
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        assert _infer(str(listing), *tiny, "--out-dir", str(out), "--no-draw") == 0
    rank0 = [Path(x["file"]).name for x in _lines(out / "results.rank0.jsonl")]
    rank1 = [Path(x["file"]).name for x in _lines(out / "results.rank1.jsonl")]
    assert rank0 == ["a_dog.jpg", "b_demo.png"] and rank1 == ["c_crop.jpg"]
    assert not (out / "vis").exists()
    listing.write_text("a_dog.jpg\nmissing.jpg\n")
    assert _infer(str(listing), *tiny, "--out-dir", str(out)) == 1  # names list.txt:2


def test_video_in_and_out(tiny: tuple[str, str], tmp_path: Path, shared_data: Path) -> None:
    frame = cv2.resize(cv2.imread(str(shared_data / "mmdet_testdata/demo/demo.jpg")), (128, 96))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (128, 96))
    for shift in range(5):
        writer.write(np.roll(frame, 4 * shift, axis=1))
    writer.release()
    out = tmp_path / "video_out"
    assert _infer(str(video), *tiny, "--out-dir", str(out), "--batch-size", "2") == 0
    lines = _lines(out / "clip_det.jsonl")
    assert [x["frame"] for x in lines] == [0, 1, 2, 3, 4]
    assert all((x["width"], x["height"]) == (128, 96) for x in lines)
    capture = cv2.VideoCapture(str(out / "clip_det.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (96, 128, 3)


def _run_demo(script: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runpy.run_path(str(ROOT / "demo" / script), run_name="__main__")


def test_demo_scripts(
    tiny: tuple[str, str], tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = str(shared_data / "mmdet_testdata/demo/demo.jpg")
    for flags in ([], ["--async-test", "--palette", "voc"]):
        out = tmp_path / f"image{len(flags)}.png"
        argv = [img, *tiny, "--device", "cpu", "--out-file", str(out), "--score-thr", "0.2"]
        _run_demo("image_demo.py", argv + flags, monkeypatch)
        drawn, original = cv2.imread(str(out)), cv2.imread(img)
        assert drawn.shape == original.shape and (drawn != original).any()
    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 64))
    for _ in range(3):
        writer.write(cv2.resize(cv2.imread(img), (96, 64)))
    writer.release()
    with pytest.raises(SystemExit) as exit_info:
        _run_demo("video_demo.py", [str(video), *tiny, "--device", "cpu",
                                    "--out", str(tmp_path / "o.mp4")], monkeypatch)  # fmt: skip
    assert exit_info.value.code == 0
    assert int(cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    with pytest.raises(SystemExit, match="at least one operation"):
        _run_demo("video_demo.py", [str(video), *tiny], monkeypatch)
    # v2's video_gpuaccel_demo.py: same flags (+ --nvdecode); on a machine without a GPU the
    # default --device cuda:0 falls back to the CPU with a note
    with pytest.raises(SystemExit) as exit_info:
        argv = [str(video), *tiny, "--nvdecode", "--out", str(tmp_path / "g.mp4")]
        _run_demo("video_gpuaccel_demo.py", argv, monkeypatch)
    assert exit_info.value.code == 0
    assert int(cv2.VideoCapture(str(tmp_path / "g.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    with pytest.raises(SystemExit, match="no camera could be opened with --camera-id 97"):
        _run_demo("webcam_demo.py", [*tiny, "--device", "cpu", "--camera-id", "97"], monkeypatch)
