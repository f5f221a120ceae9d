"""The dialect normaliser: every 2.6–2.28 spelling becomes the 2.28 form, one note per rewrite."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from detforge.config import Config, normalize_config
from detforge.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "config"


def test_legacy_config_is_upgraded_and_raw_untouched() -> None:
    raw = Config.fromfile(DATA / "legacy_v26.py")
    before = raw.to_dict()
    cfg, notes = normalize_config(raw)
    assert raw.to_dict() == before  # the raw merged config stays available as it was
    assert "total_epochs" not in cfg and "train_cfg" not in cfg and "test_cfg" not in cfg
    assert cfg.runner == {"type": "EpochBasedRunner", "max_epochs": 12}
    assert "pretrained" not in cfg.model
    assert cfg.model.backbone.init_cfg == {
        "type": "Pretrained",
        "checkpoint": "torchvision://resnet50",
    }
    assert cfg.model.train_cfg.rpn_proposal == {
        "nms_pre": 2000,
        "min_bbox_size": 0,
        "nms": {"type": "nms", "iou_threshold": 0.7},
        "max_per_img": 1000,
    }
    assert cfg.model.test_cfg.rpn == {
        "nms_pre": 1000,
        "min_bbox_size": 0,
        "nms": {"type": "nms", "iou_threshold": 0.7},
        "max_per_img": 1000,
    }
    assert cfg.model.test_cfg.rcnn.nms == {"type": "nms", "iou_threshold": 0.5}
    assert cfg.data == {"workers_per_gpu": 2, "samples_per_gpu": 2}
    # one note per rewrite: total_epochs, train_cfg, test_cfg, pretrained, 2 x (nms_thr,
    # max_num, nms_post, nms_across_levels), iou_thr, imgs_per_gpu
    assert len(notes) == 14
    assert all("\n" not in note for note in notes)


def test_notes_are_logged_one_warning_each(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="detforge"):
        _, notes = normalize_config(Config(dict(total_epochs=3)))
    assert [r.getMessage() for r in caplog.records] == [f"config: {n}" for n in notes]


def test_a_228_config_needs_no_rewrite() -> None:
    cfg = Config(
        dict(
            runner=dict(type="EpochBasedRunner", max_epochs=12),
            model=dict(type="RetinaNet", train_cfg=dict(), test_cfg=dict(nms=dict(type="nms"))),
        )
    )
    new, notes = normalize_config(cfg)
    assert notes == []
    assert new.to_dict() == cfg.to_dict()


def test_total_epochs_must_agree_with_runner() -> None:
    ok, notes = normalize_config(
        Config(dict(total_epochs=12, runner=dict(type="EpochBasedRunner", max_epochs=12)))
    )
    assert "total_epochs" not in ok and len(notes) == 1
    with pytest.raises(ConfigError, match=r"total_epochs=12 and runner\.max_epochs=24"):
        normalize_config(
            Config(dict(total_epochs=12, runner=dict(type="EpochBasedRunner", max_epochs=24)))
        )


def test_top_level_cfg_merges_over_model_cfg() -> None:
    cfg = Config(
        dict(
            model=dict(
                type="FasterRCNN",
                train_cfg=dict(rpn_proposal=dict(nms_pre=2000, max_per_img=1000), rcnn=dict(a=1)),
            ),
            train_cfg=dict(rpn_proposal=dict(nms_pre=3000)),
        )
    )
    new, notes = normalize_config(cfg)
    assert new.model.train_cfg == {
        "rpn_proposal": {"nms_pre": 3000, "max_per_img": 1000},
        "rcnn": {"a": 1},
    }
    assert notes == ["top-level train_cfg merged into model.train_cfg (the 2.9+ layout)"]


def test_top_level_cfg_with_delete_replaces_model_cfg() -> None:
    cfg = Config(
        dict(model=dict(test_cfg=dict(a=1)), test_cfg=dict(_delete_=True, b=2)),
    )
    new, _ = normalize_config(cfg)
    assert new.model.test_cfg == {"b": 2}


def test_top_level_cfg_without_model_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no model"):
        normalize_config(Config(dict(train_cfg=dict(rpn=dict()))))


def test_rpn_conflicting_spellings_are_errors() -> None:
    base = dict(nms_pre=1000, max_per_img=1000, nms=dict(type="nms", iou_threshold=0.7))
    with pytest.raises(ConfigError, match=r"max_num=500 and .*max_per_img=1000"):
        normalize_config(Config(dict(model=dict(test_cfg=dict(rpn=dict(base, max_num=500))))))
    with pytest.raises(ConfigError, match=r"nms_thr=0\.5 and .*iou_threshold=0\.7"):
        normalize_config(Config(dict(model=dict(test_cfg=dict(rpn=dict(base, nms_thr=0.5))))))
    same, _ = normalize_config(
        Config(dict(model=dict(test_cfg=dict(rpn=dict(base, max_num=1000, nms_thr=0.7)))))
    )
    assert same.model.test_cfg.rpn == base


def test_iou_thr_renamed_anywhere_in_nms_dicts() -> None:
    cfg = Config(
        dict(
            model=dict(
                test_cfg=dict(
                    rcnn=[dict(nms=dict(type="soft_nms", iou_thr=0.3, min_score=0.05))],
                    other=dict(type="not_nms", iou_thr=0.1),
                )
            )
        )
    )
    new, notes = normalize_config(cfg)
    assert new.model.test_cfg.rcnn[0].nms == {
        "type": "soft_nms",
        "min_score": 0.05,
        "iou_threshold": 0.3,
    }
    assert new.model.test_cfg.other == {"type": "not_nms", "iou_thr": 0.1}
    assert notes == [
        "model.test_cfg.rcnn.0.nms.iou_thr -> model.test_cfg.rcnn.0.nms.iou_threshold=0.3"
    ]


def test_imgs_per_gpu_wins_over_samples_per_gpu() -> None:
    new, notes = normalize_config(Config(dict(data=dict(imgs_per_gpu=4, samples_per_gpu=2))))
    assert new.data == {"samples_per_gpu": 4}
    assert "replaces data.samples_per_gpu=2" in notes[0]


def test_pretrained_none_is_dropped_and_missing_backbone_is_an_error() -> None:
    new, notes = normalize_config(Config(dict(model=dict(pretrained=None, backbone=dict()))))
    assert new.model == {"backbone": {}}
    assert notes == ["model.pretrained=None dropped"]
    with pytest.raises(ConfigError, match="no backbone"):
        normalize_config(Config(dict(model=dict(pretrained="x.pth"))))


def test_leftover_delete_markers_are_removed() -> None:
    raw = Config.fromfile(DATA / "delete.py")
    assert raw.item3 == {"c": 1, "_delete_": True}
    new, notes = normalize_config(raw)
    assert new.item3 == {"c": 1}
    assert notes == ["item3._delete_ removed (its base had no 'item3' to delete)"]


@pytest.mark.parametrize(
    "cfg",
    [
        dict(train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=12)),
        dict(train_dataloader=dict(batch_size=2)),
        dict(default_scope="mmdet"),
    ],
)
def test_v3_configs_are_recognised(cfg: dict) -> None:
    with pytest.raises(ConfigError, match=r"MMDetection 3\.x config"):
        normalize_config(Config(cfg))
