import json

import cv2
import numpy as np

from detforge.cli.demo import CLASSES, demo_config_text, make_synthetic_coco
from detforge.config import Config


def test_synthetic_coco_layout_and_boxes(tmp_path):
    paths = make_synthetic_coco(tmp_path, num_train=6, num_val=3, size=96, seed=1)
    train = json.loads(paths["train"].read_text())
    val = json.loads(paths["val"].read_text())
    assert [c["name"] for c in train["categories"]] == list(CLASSES)
    assert len(train["images"]) == 6 and len(val["images"]) == 3
    per_image = {}
    for ann in train["annotations"]:
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96 and w > 0 and h > 0
    assert sorted(per_image) == [1, 2, 3, 4, 5, 6]
    assert all(1 <= n <= 3 for n in per_image.values())
    # the centre of every shape is painted (shape colours are >= 90, backgrounds < 90)
    for img_info in train["images"]:
        img = cv2.imread(str(paths["images"] / img_info["file_name"]))
        assert img.shape == (96, 96, 3)
        for ann in train["annotations"]:
            if ann["image_id"] == img_info["id"]:
                x, y, w, h = ann["bbox"]
                cx, cy = int(x + w / 2), int(y + h / 2)
                assert img[cy, cx].max() >= 90


def test_synthetic_coco_is_deterministic(tmp_path):
    a = make_synthetic_coco(tmp_path / "a", num_train=3, num_val=1, seed=5)
    b = make_synthetic_coco(tmp_path / "b", num_train=3, num_val=1, seed=5)
    c = make_synthetic_coco(tmp_path / "c", num_train=3, num_val=1, seed=6)
    assert a["train"].read_text() == b["train"].read_text()
    img_a = cv2.imread(str(a["images"] / "train_0000.png"))
    assert np.array_equal(img_a, cv2.imread(str(b["images"] / "train_0000.png")))
    assert not np.array_equal(img_a, cv2.imread(str(c["images"] / "train_0000.png")))


def test_demo_config_is_loadable(tmp_path):
    cfg = Config.fromstring(demo_config_text(tmp_path, max_epochs=3), ".py")
    assert cfg.model.bbox_head.num_classes == len(CLASSES)
    assert cfg.runner.max_epochs == 3
    assert cfg.data.train.ann_file.endswith("train.json")
