"""``${a.b}`` interpolation and the data-root environment override (MMDetection's rules)."""

from __future__ import annotations

import pytest

from detforge.config import Config, replace_cfg_vals, update_data_root
from detforge.errors import ConfigKeyError, ConfigTypeError


def make() -> Config:
    return Config(
        dict(
            data_root="data/coco/",
            classes=("cat", "dog"),
            img_scale=(1333, 800),
            num=3,
            model=dict(head=dict(num_classes="${num}", classes="${classes}")),
            data=dict(
                train=dict(
                    ann_file="${data_root}annotations/train.json",
                    img_prefix="${data_root}train2017/",
                    pipeline=[dict(type="Resize", img_scale="${img_scale}")],
                ),
                note="${num}x${num} at ${img_scale.0}",
            ),
        ),
        cfg_text="# cfg.py",
        filename="cfg.py",
    )


def test_whole_string_reference_keeps_the_type() -> None:
    cfg = replace_cfg_vals(make())
    assert cfg.model.head.num_classes == 3
    assert cfg.model.head.classes == ("cat", "dog")
    assert cfg.data.train.pipeline[0].img_scale == (1333, 800)
    assert cfg.filename == "cfg.py" and cfg.text == "# cfg.py"


def test_embedded_references_become_strings() -> None:
    cfg = replace_cfg_vals(make())
    assert cfg.data.train.ann_file == "data/coco/annotations/train.json"
    assert cfg.data.note == "3x3 at 1333"


def test_input_config_is_not_modified() -> None:
    cfg = make()
    replace_cfg_vals(cfg)
    assert cfg.model.head.num_classes == "${num}"


def test_embedded_container_is_an_error() -> None:
    cfg = Config(dict(a=[1, 2], b="x${a}"))
    with pytest.raises(ConfigTypeError, match=r"\$\{a\} is a list"):
        replace_cfg_vals(cfg)


def test_missing_reference_names_the_place_and_a_close_key() -> None:
    cfg = Config(dict(model=dict(num_classes=3), head=dict(n="${model.num_class}")))
    with pytest.raises(ConfigKeyError) as info:
        replace_cfg_vals(cfg)
    message = str(info.value)
    assert "head.n" in message and "'num_class'" in message and "'num_classes'" in message


def test_model_wrapper_replaces_model() -> None:
    cfg = replace_cfg_vals(Config(dict(model=dict(a=1), model_wrapper=dict(b=2))))
    assert cfg.model == {"b": 2} and "model_wrapper" not in cfg


def test_data_root_from_environment() -> None:
    cfg = replace_cfg_vals(make())
    new_root = update_data_root(cfg, {"MMDET_DATASETS": "/datasets/coco/"})
    assert new_root == "/datasets/coco/"
    assert cfg.data_root == "/datasets/coco/"
    assert cfg.data.train.ann_file == "/datasets/coco/annotations/train.json"
    assert cfg.data.train.img_prefix == "/datasets/coco/train2017/"


def test_detforge_variable_wins_and_lists_are_left_alone() -> None:
    cfg = Config(
        dict(
            data_root="data/voc/",
            data=dict(train=dict(ann_file=["data/voc/a.txt"], img_prefix="data/voc/")),
        )
    )
    env = {"DETFORGE_DATASETS": "/fast/voc/", "MMDET_DATASETS": "/slow/voc/"}
    assert update_data_root(cfg, env) == "/fast/voc/"
    assert cfg.data.train.img_prefix == "/fast/voc/"
    assert cfg.data.train.ann_file == ["data/voc/a.txt"]  # mmdet does not walk into lists


def test_no_variable_or_no_data_root_changes_nothing() -> None:
    cfg = make()
    assert update_data_root(cfg, {}) is None
    assert cfg.data_root == "data/coco/"
    bare = Config(dict(data=dict(a="x")))
    assert update_data_root(bare, {"DETFORGE_DATASETS": "/d/"}) is None
    assert bare.to_dict() == {"data": {"a": "x"}}
