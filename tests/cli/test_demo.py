import contextlib
import io
import json
import pickle
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detforge.cli.demo import CONFIG, find_demo_config
from detforge.cli.main import main
from detforge.config import Config, load_config
from detforge.datasets import build_dataset
from tests.tiny_demo import TINY_CLASSES, demo_config_text, make_synthetic_coco


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Any:
    # Two PyTorch threads on a busy 2-core machine wait on each other (20x slower trainings).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: Any) -> dict[str, Any]:
    """``detforge demo --quick`` run once: its stdout and work dir."""
    work = tmp_path_factory.mktemp("demo") / "work"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--quick", "--work-dir", str(work), "--threads", "1"])
    assert code == 0, out.getvalue()[-2000:]
    return dict(work=work, out=out.getvalue())


def _val_names(work: Path) -> list[str]:
    return [img["file_name"] for img in json.loads((work / "data/val.json").read_text())["images"]]


def test_quick_demo_prints_the_map_and_writes_curves_and_drawings(quick_demo):
    work, out = quick_demo["work"], quick_demo["out"]
    (evaluation,) = work.glob("eval_*.json")
    metric = json.loads(evaluation.read_text())["metric"]
    match = re.search(r"bbox mAP = (\d\.\d{3}) \(mAP@0\.5 = (\d\.\d{3})\) on 8 validation images "
                      r"after 2 epochs", out)  # fmt: skip
    assert match, out[-1500:]
    assert float(match[1]) == pytest.approx(metric["bbox_mAP"], abs=5e-4)
    assert float(match[2]) == pytest.approx(metric["bbox_mAP_50"], abs=5e-4)
    curve = work / "curves.png"
    assert f"curves:      {curve}" in out
    png = cv2.imread(str(curve))
    assert png is not None and png.shape[0] > 300 and png.std() > 5
    names = _val_names(work)
    assert len(names) == 8
    assert sorted(p.name for p in (work / "predictions").iterdir()) == sorted(names)
    assert "(8 drawn images" in out
    assert (work / "train" / "epoch_2.pth").is_file()


def test_test_cli_pickle_rescores_to_the_printed_numbers(quick_demo, tmp_path, capsys):
    work = quick_demo["work"]
    data = work / "data"
    options = [f"data.test.ann_file={data / 'val.json'}", f"data.test.img_prefix={data}/images/",
               "model.test_cfg.score_thr=0.0", "model.test_cfg.max_per_img=5"]  # fmt: skip
    config = find_demo_config()
    out, show = tmp_path / "r.pkl", tmp_path / "d"
    capsys.readouterr()
    code = main(["test", str(config), str(work / "train" / "epoch_2.pth"), "--eval", "bbox",
                 "--out", str(out), "--show-dir", str(show), "--show-score-thr", "0.0",
                 "--work-dir", str(tmp_path), "--device", "cpu",
                 "--cfg-options", *options])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    (evaluation,) = tmp_path.glob("eval_*.json")
    returned = json.loads(evaluation.read_text())["metric"]

    cfg = load_config(str(config), cfg_options=dict(o.split("=", 1) for o in options[:2])).cfg
    dataset = build_dataset(dict(cfg.data.test, test_mode=True))
    with open(out, "rb") as f:
        results = pickle.load(f)
    assert len(results) == len(dataset) == 8
    rescored = dataset.evaluate(results, metric="bbox")
    assert set(rescored) == set(returned)
    for key, value in returned.items():
        assert rescored[key] == value, key
        if key != "bbox_mAP_copypaste":
            assert f"('{key}', {value})" in printed
    assert rescored["bbox_mAP_50"] > 0  # the model did learn something in 2 epochs

    drawn = sorted(show.iterdir())
    assert [p.name for p in drawn] == sorted(_val_names(work))
    for path in drawn:
        original = cv2.imread(str(data / "images" / path.name))
        picture = cv2.imread(str(path))
        assert picture.shape == original.shape
        assert np.count_nonzero(np.any(picture != original, axis=2)) > 50, path.name


def test_shipped_demo_config(tmp_path):
    assert find_demo_config().relative_to(Path(__file__).resolve().parents[2]) == Path(CONFIG)
    cfg = load_config(find_demo_config()).cfg
    assert cfg.model.type == "ATSS"
    assert cfg.model.bbox_head.num_classes == len(cfg.classes) == 3
    assert cfg.evaluation.metric == "bbox"


def test_tiny_helpers_for_tests(tmp_path):
    paths = make_synthetic_coco(tmp_path, num_train=3, num_val=1, size=64)
    coco = json.loads(paths["train"].read_text())
    assert [c["name"] for c in coco["categories"]] == list(TINY_CLASSES)
    assert len(coco["images"]) == 3 and coco["annotations"]
    cfg = Config.fromstring(demo_config_text(paths["root"], max_epochs=3), ".py")
    assert cfg.model.bbox_head.num_classes == len(TINY_CLASSES)
    assert cfg.runner.max_epochs == 3
    assert cfg.data.train.ann_file == str(paths["train"].resolve())
