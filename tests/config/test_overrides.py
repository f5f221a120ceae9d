"""``--cfg-options`` and ``CFG_OPTIONS``: what they may not set, and errors that name them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

from detforge.config import Config, DictAction, load_config
from detforge.config.dict_action import parse_cfg_options
from detforge.config.safe_eval import UnsafeExpressionError
from detforge.errors import ConfigError, ConfigKeyError, ConfigTypeError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FASTER = CONFIGS / "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py"
PLANTED = [
    ({"_base_": "evil.py"}, "_base_"),
    ({"_base_.x": 1}, "_base_"),
    ({"custom_imports": {"imports": ["evil_module"]}}, "custom_imports"),
    ({"custom_imports.imports": ["evil_module"]}, "custom_imports"),
    ({"model": {"neck": {"_base_": "evil.py"}}}, "_base_"),
    ({"model.neck": {"custom_imports": {"imports": ["evil_module"]}}}, "custom_imports"),
]


@pytest.mark.parametrize(("options", "key"), PLANTED)
def test_keys_that_would_run_code_on_reload_are_refused(options: dict[str, Any], key: str) -> None:
    option = next(iter(options))
    with pytest.raises(ConfigKeyError) as info:
        load_config(FASTER, cfg_options=options, environ={})
    message = str(info.value)
    assert message.startswith(f"--cfg-options: {option}: '{key}' cannot be set by an override")
    assert "put it in a config file" in message
    with pytest.raises(ConfigKeyError, match=rf"^CFG_OPTIONS: {option}: '{key}' cannot be set"):
        load_config(FASTER, environ={"CFG_OPTIONS": repr(options)})


def test_an_override_never_reaches_the_dumped_config(tmp_path: Path) -> None:
    """What the refusal protects: a dumped config with custom_imports imports on reload."""
    (tmp_path / "planted_mod_xyz.py").write_text("RAN = True\n")
    sys.path.insert(0, str(tmp_path))
    try:
        cfg = Config(dict(a=1))
        with pytest.raises(ConfigKeyError):
            cfg.merge_from_dict({"custom_imports.imports": ["planted_mod_xyz"]})
        cfg.dump(tmp_path / "dumped.py")
        Config.fromfile(tmp_path / "dumped.py")
        assert "planted_mod_xyz" not in sys.modules
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["img_scale=[(1333,800)(1333,640)]"],
         "img_scale: missing comma between '(1333,800)' and '(1333,640)'"),
        (["x=" + "[" * 1000 + "]" * 1000], "x: brackets are nested deeper than 100 levels"),
        (["x={'a':1,'b':2}"], "x: {'a':1,'b':2} is a dict, which --cfg-options values cannot be"),
        (["novalue"], "expected KEY=VALUE, got 'novalue'"),
    ],
)  # fmt: skip
def test_unparsable_values_name_the_option(words: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cfg_options(words)
    assert str(info.value).startswith(message)


def test_the_parser_exits_with_the_option_named(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    with pytest.raises(SystemExit):
        parser.parse_args(["--cfg-options", "img_scale=[(1333,800)(1333,640)]"])
    assert "--cfg-options: img_scale: missing comma" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "kind", "message"),
    [
        ({"data.train.pipeline.x": 1}, ConfigKeyError,
         "--cfg-options: data.train.pipeline.x: data.train.pipeline is a list of 8 items: "
         "index it with 0 to 7, not 'x'"),
        ({"data.train.pipeline.8.type": "Pad"}, ConfigKeyError,
         "--cfg-options: data.train.pipeline.8.type: index 8 is out of range: "
         "data.train.pipeline has 8 items"),
        ({"model.neck.in_channels.0.x": 1}, ConfigTypeError,
         "--cfg-options: model.neck.in_channels.0.x: model.neck.in_channels.0 is 256, not a dict "
         "or a list, so it has no 'x'"),
        ({"optimizer": None, "optimizer.lr": 1}, ConfigKeyError,
         "--cfg-options: optimizer.lr: another option sets optimizer to None, which has no keys"),
        ({"model..neck": 1}, ConfigKeyError,
         "--cfg-options: model..neck: empty component in the key"),
        ({"model.backbone": "pytorch"}, ConfigTypeError,
         "--cfg-options: model.backbone: model.backbone is a component config (type='ResNet'), "
         "which 'pytorch' cannot replace"),
        ({"filename": "x"}, ConfigKeyError,
         "--cfg-options: filename: 'filename' is reserved for the config file"),
    ],
)  # fmt: skip
def test_merge_errors_name_the_option(
    options: dict[str, Any], kind: type[ConfigError], message: str
) -> None:
    with pytest.raises(kind) as info:
        load_config(FASTER, cfg_options=options, environ={})
    assert str(info.value).startswith(message)


def test_a_deep_cfg_options_expression_is_refused() -> None:
    with pytest.raises(UnsafeExpressionError, match=r"^CFG_OPTIONS: nested deeper than 100"):
        load_config(FASTER, environ={"CFG_OPTIONS": "{'optimizer.lr': " + "-" * 1000 + "1}"})


def test_what_mmcv_allows_still_works() -> None:
    cfg = load_config(
        FASTER,
        cfg_options={
            "train_pipeline.2.img_scale.1": 640,  # a tuple element: a new tuple
            "model.backbone.init_cfg": None,  # a component removed
            "model.roi_head.bbox_head.loss_cls": {"_delete_": True, "type": "FocalLoss"},
            "data.train.pipeline.2": {"img_scale": (1000, 600)},
            "model.neck.in_channels.0": 128,
        },
        environ={"CFG_OPTIONS": "{'optimizer': dict(type='SGD', lr=0.1), 'optimizer.lr': 0.2}"},
    ).cfg
    assert cfg.train_pipeline[2].img_scale == (1333, 640)
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.roi_head.bbox_head.loss_cls == {"type": "FocalLoss"}
    assert cfg.data.train.pipeline[2].img_scale == (1000, 600)
    assert cfg.model.neck.in_channels == [128, 512, 1024, 2048]
    assert cfg.optimizer.lr == 0.2 and cfg.optimizer.momentum == 0.9


def test_a_later_whole_dict_option_discarding_dotted_ones_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The seeds' CFG_OPTIONS: ``"model": dict(...)`` after ``"model.*"`` keys. MMCV's result
    is kept (the dotted keys are lost), with one warning line naming them and the fix."""
    from detforge.config.overrides import discarded_overrides, merge_overrides

    base = {"model": {"type": "R", "head": {"num_classes": 80}, "pretrained": None}}
    options = {
        "model.head.num_classes": 2,
        "optimizer.lr": 0.01,
        "model.anchor_scales": [4],
        "model": dict(pretrained="torchvision://resnet50", backbone=dict(depth=50)),
    }
    with caplog.at_level("WARNING", logger="detforge"):
        merged = merge_overrides(base, options, source="CFG_OPTIONS")
    assert merged["model"]["head"]["num_classes"] == 80  # MMCV's result
    assert "anchor_scales" not in merged["model"] and merged["optimizer"]["lr"] == 0.01
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "CFG_OPTIONS: 'model', given after model.head.num_classes, model.anchor_scales, replaces "
        "them as MMCV does (they are discarded); to keep them write model.pretrained=..., "
        "model.backbone=..."
    )
    assert discarded_overrides() == [
        "CFG_OPTIONS: model.head.num_classes (by model)",
        "CFG_OPTIONS: model.anchor_scales (by model)",
    ]
    caplog.clear()
    merge_overrides(base, {"model": {}, "model.head.num_classes": 2}, source="CFG_OPTIONS")
    assert not caplog.records and discarded_overrides() == []
