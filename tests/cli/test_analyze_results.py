"""``detforge analyze-results``: the best and worst images by per-image mAP, drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.results import build_test_dataset
from detforge.cli.main import main
from detforge.config import load_config
from detforge.utils.image import imread
from tests.analysis.bccd import dump, perfect_results, write_bccd_config


def test_good_and_bad_images_carry_their_map_in_the_name(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_bccd_config(tmp_path, shared_data)
    dataset = build_test_dataset(load_config(config).cfg)
    results = perfect_results(dataset)  # 00007, 00011, 00015, 00016
    results[1] = [np.zeros((0, 5), np.float32)] * 3  # 00011: nothing found -> mAP 0
    results[3][0] = np.zeros((0, 5), np.float32)  # 00016: RBC missed; WBC, Platelets found -> 2/3
    pkl = dump(results, tmp_path / "results.pkl")
    show_dir = tmp_path / "show"
    assert main(["analyze-results", str(config), str(pkl), str(show_dir), "--topk", "2"]) == 0
    good = sorted(p.name for p in (show_dir / "good").iterdir())
    bad = sorted(p.name for p in (show_dir / "bad").iterdir())
    assert good == ["BloodImage_00007_1.0.jpg", "BloodImage_00015_1.0.jpg"]
    assert bad == ["BloodImage_00011_0.0.jpg", "BloodImage_00016_0.667.jpg"]
    drawn = imread(show_dir / "bad" / "BloodImage_00016_0.667.jpg")
    assert drawn.shape == (2 * 480, 640, 3)  # GT above, predictions below
    original = imread(shared_data / "bccd" / "BCCD" / "JPEGImages" / "BloodImage_00016.jpg")
    top, bottom = drawn[:480].astype(int), drawn[480:].astype(int)
    # 13 GT boxes drawn above, only the 2 found ones below
    assert (np.abs(top - original).sum(-1) > 60).sum() > 2 * (
        np.abs(bottom - original).sum(-1) > 60
    ).sum()

    # topk above half the images is cut to half, as v2 does; --overlay-gt-pred draws one image
    out = tmp_path / "overlay"
    assert main(["analyze-results", str(config), str(pkl), str(out), "--topk", "20",
                 "--overlay-gt-pred"]) == 0  # fmt: skip
    assert len(list((out / "good").iterdir())) == 2
    assert imread(next((out / "bad").iterdir())).shape == (480, 640, 3)


def test_results_of_another_dataset_are_refused(tmp_path: Path, shared_data: Path) -> None:
    config = write_bccd_config(tmp_path, shared_data)
    pkl = dump([[np.zeros((0, 5), np.float32)] * 3] * 3, tmp_path / "three.pkl")
    with pytest.raises(SystemExit, match="3 results but the test dataset has 4 images"):
        main(["analyze-results", str(config), str(pkl), str(tmp_path / "show")])


def test_wrapped_train_set_loads_through_the_inner_dataset(
    tmp_path: Path, shared_data: Path
) -> None:
    config = write_bccd_config(tmp_path, shared_data)
    dataset = build_test_dataset(load_config(config).cfg)
    results = perfect_results(dataset)
    results[1] = [np.zeros((0, 5), np.float32)] * 3  # 00011: nothing found -> mAP 0
    pkl = dump(results, tmp_path / "results.pkl")
    with open(config, "a") as f:  # the wrapper's own pipeline loads nothing
        f.write(
            "data['train'] = dict(type='MultiImageMixDataset', pipeline=[\n"
            "    dict(type='Mosaic', img_scale=(320, 240)), dict(type='RandomFlip')],\n"
            "    dataset=dict(type='RepeatDataset', times=2, dataset=dict(\n"
            "        type='ClassBalancedDataset', oversample_thr=0.1,\n"
            "        dataset=dict(**common, pipeline=train_pipeline))))\n"
        )
    show_dir = tmp_path / "show"
    assert main(["analyze-results", str(config), str(pkl), str(show_dir), "--topk", "1"]) == 0
    assert [p.name for p in (show_dir / "bad").iterdir()] == ["BloodImage_00011_0.0.jpg"]
    drawn = imread(show_dir / "bad" / "BloodImage_00011_0.0.jpg")
    assert drawn.shape == (2 * 480, 640, 3)  # original frame: the loading steps only
    original = imread(shared_data / "bccd" / "BCCD" / "JPEGImages" / "BloodImage_00011.jpg")
    top, bottom = drawn[:480].astype(int), drawn[480:].astype(int)
    assert (np.abs(top - original).sum(-1) > 60).sum() > 1000  # 19 GT boxes read and drawn
    assert (np.abs(bottom - original).sum(-1) > 60).sum() == 0  # no predictions

    # a train pipeline with no loading step is named, not a KeyError
    with open(config, "a") as f:
        f.write("data['train']['dataset']['dataset']['dataset']['pipeline'] = [\n"
                "    dict(type='RandomFlip')]\n")  # fmt: skip
    with pytest.raises(SystemExit, match=r"data\.train\.dataset\.dataset\.dataset\.pipeline has no "
                       r"loading step .*\['RandomFlip'\]"):  # fmt: skip
        main(["analyze-results", str(config), str(pkl), str(tmp_path / "again")])
