"""``detforge export onnx|torchscript`` and the v2 script ``tools/deployment/pytorch2onnx.py``."""

from __future__ import annotations

import importlib.util
import runpy
import sys

import pytest

from detforge import export as export_pkg
from detforge.cli.main import main
from tests.export.conftest import ROOT

SHIM = ROOT / "tools" / "deployment" / "pytorch2onnx.py"


def test_pytorch2onnx_shim_exports_and_verifies(
    tiny_model, tiny_dir, demo_jpg, color_jpg, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("onnxruntime")
    tiny_model("retinanet")
    out = tmp_path / "sub" / "retina.onnx"
    argv = [
        str(tiny_dir / "retinanet.py"), str(tiny_dir / "retinanet.pth"),
        "--output-file", str(out), "--input-img", str(demo_jpg), "--test-img", str(color_jpg),
        "--shape", "320", "480", "--opset-version", "11", "--verify",
        "--cfg-options", "model.test_cfg.max_per_img=20",
        "--dataset", "coco", "--mean", "1", "2", "3", "--std", "4", "5", "6",  # v2's, ignored
    ]  # fmt: skip
    simplify = importlib.util.find_spec("onnxsim") is not None
    if simplify:
        argv.append("--simplify")
    monkeypatch.setattr(sys, "argv", [str(SHIM), *argv])
    prepared = []
    real_prepare = export_pkg.prepare_input
    monkeypatch.setattr(
        export_pkg,
        "prepare_input",
        lambda cfg, image, *a: prepared.append(image) or real_prepare(cfg, image, *a),
    )
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SHIM), run_name="__main__")
    assert exit_info.value.code == 0
    captured = capsys.readouterr()
    text = captured.out
    # each image goes through the test pipeline once (--verify reuses the traced input)
    assert prepared == [str(demo_jpg), str(color_jpg)]
    assert (
        "warning: --dataset, --mean, --std ignored (deprecated in v2): the config's img_norm_cfg "
        "(mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375]) and classes ['a', 'b', 'c'] "
    ) in captured.err
    with pytest.raises(SystemExit):
        main(["export", "onnx", "--help"])
    usage = capsys.readouterr().out
    assert "[--opset-version" in usage and "[--mean" not in usage and "[--dataset" not in usage
    assert out.is_file() and "Successfully exported ONNX model" in text
    assert "input [1, 3, 320, 480]" in text and ("simplified" in text) == simplify
    # both images verified at the static size; --cfg-options reached the graph
    assert text.count("detections: pytorch 20, exported 20") == 2, text
    assert "MISMATCH" not in text


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_verify_and_its_failure(tiny_model, tiny_dir, demo_jpg, tmp_path, capsys):
    tiny_model("faster_rcnn")
    args = ["export", "torchscript", str(tiny_dir / "faster_rcnn.py")]
    args += [str(tiny_dir / "faster_rcnn.pth"), str(tmp_path / "f.pt")]
    args += ["--input-img", str(demo_jpg), "--verify"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "max abs diff boxes 0, scores 0" in text and (tmp_path / "f.pt").is_file()
    # differences beyond --atol fail (a negative tolerance fails even exact outputs)
    assert main([*args, "--atol", "-1"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_clear_errors(tiny_model, tiny_dir, demo_jpg, tmp_path, monkeypatch, capsys):
    tiny_model("faster_rcnn")
    cfg, ckpt = str(tiny_dir / "faster_rcnn.py"), str(tiny_dir / "faster_rcnn.pth")
    with pytest.raises(SystemExit, match="--input-img is required"):
        main(["export", "onnx", cfg, ckpt, str(tmp_path / "a.onnx")])
    img = ["--input-img", str(demo_jpg)]
    with pytest.raises(SystemExit, match="two outputs"):
        main(["export", "onnx", cfg, ckpt, "a.onnx", "--output-file", "b.onnx", *img])
    assert main(["export", "onnx", cfg, ckpt, str(tmp_path / "r.onnx"), *img,
                 "--skip-postprocess"]) == 1  # fmt: skip
    assert "only available for single-stage" in capsys.readouterr().err
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxsim" else real_find_spec(name, *a),
    )
    assert main(["export", "onnx", cfg, ckpt, str(tmp_path / "s.onnx"), *img, "--simplify"]) == 1
    assert "pip install onnxsim" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()
    with pytest.raises(ImportError, match=r"--simplify needs onnxsim.*pip install onnxsim"):
        export_pkg.simplify_onnx(tmp_path / "s.onnx")  # the same message from the library
