"""Config mistakes are errors with a did-you-mean before any work (v2 found them late or never)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detforge.apis.config_check import check_config, check_metrics
from detforge.cli.main import main
from detforge.datasets import CocoDataset, CustomDataset
from detforge.errors import ConfigKeyError
from tests.tiny_demo import demo_config_text, make_synthetic_coco

COCO_VAL = dict(type="CocoDataset", ann_file="a.json", pipeline=[])
TOLERATED = dict(
    workflow=[("train", 1)], opencv_num_threads=0, mp_start_method="fork",
    auto_scale_lr=dict(enable=False, base_batch_size=16), gpu_ids=[0], dist_params={},
    checkpoint="https://example.com/backbone.pth", max_epochs=12, img_size=640,
)  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (dict(lr_confg={}), "config: unknown key 'lr_confg'; did you mean 'lr_config'?"),
        (dict(data=dict(samples_per_gpus=2)),
         "data: unknown key 'samples_per_gpus'; did you mean 'samples_per_gpu' or 'imgs_per_gpu' "
         "or 'workers_per_gpu'?"),
        (dict(data=dict(val=COCO_VAL), evaluation=dict(interval=1, metirc="bbox")),
         "evaluation: unknown key 'metirc'; did you mean 'metric'?"),
        (dict(data=dict(val=dict(type="RepeatDataset", times=2, dataset=COCO_VAL)),
              evaluation=dict(metric="mAP")),
         "evaluation.metric: CocoDataset cannot evaluate 'mAP'; it evaluates bbox, segm, "
         "proposal, proposal_fast"),
    ],
)  # fmt: skip
def test_misspelt_keys_and_metrics_are_errors(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigKeyError) as info:
        check_config(cfg)
    assert str(info.value) == message


def test_keys_v2_tolerated_and_config_helpers_stay_accepted() -> None:
    check_config(dict(TOLERATED, data=dict(val=COCO_VAL, samples_per_gpu=2),
                      evaluation=dict(interval=1, metric=["bbox"], classwise=True,
                                      save_best="auto", rule="greater")))  # fmt: skip
    check_config(dict(evaluation=dict(metirc="x")), validate=False)  # --no-validate
    check_metrics("recall", CustomDataset, "--eval")
    with pytest.raises(ConfigKeyError, match="did you mean 'segm'"):
        check_metrics(["segn"], CocoDataset, "--eval")


def _config(root: Path, extra: str) -> Path:
    paths = make_synthetic_coco(root / "data", num_train=2, num_val=2, size=32, seed=0)
    config = root / "tiny.py"
    text = demo_config_text(paths["root"], max_epochs=1, samples_per_gpu=2, img_size=32)
    config.write_text(text + extra)
    return config


def test_cli_stops_before_work(tmp_path: Path, capsys: Any) -> None:
    config = _config(tmp_path, "lr_confg = dict(policy='step', step=[1])\n")
    work_dir = tmp_path / "w"
    assert main(["train", str(config), "--work-dir", str(work_dir), "--device", "cpu"]) == 1
    assert "unknown key 'lr_confg'; did you mean 'lr_config'?" in capsys.readouterr().err
    assert not list(work_dir.glob("*.log"))  # nothing was built or logged
    # --eval mAP on COCO: refused before the checkpoint is even read
    assert main(["test", str(config), str(tmp_path / "missing.pth"), "--eval", "mAP",
                 "--device", "cpu"]) == 1  # fmt: skip
    assert "--eval: CocoDataset cannot evaluate 'mAP'" in capsys.readouterr().err
