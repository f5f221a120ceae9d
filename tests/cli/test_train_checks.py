"""Training-time checks through the real ``detforge train`` CLI on a tiny synthetic dataset.

One short training (2 epochs x 2 iterations of a tiny RetinaNet on 64 px images, evaluated
after each epoch) is shared by the tests that read its work dir: hook table, ETA, auto-scaled
lr, validation losses next to the metrics, TensorBoard. NaN losses, class-count mismatches and
``--diff-seed`` get runs of their own that stop early.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.cli.main import main
from detforge.engine.hooks import Hook
from detforge.registry import HOOKS
from tests.tiny_demo import demo_config_text, make_synthetic_coco

EXTRA = """
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook'),
                                     dict(type='TensorboardLoggerHook')])
evaluation = dict(interval=1, metric='bbox')
auto_scale_lr = dict(enable=False, base_batch_size=16)
custom_hooks = []  # the class-count and loss checks are on without being listed
"""


def _setup(root: Path, extra: str = EXTRA, max_epochs: int = 2) -> Path:
    paths = make_synthetic_coco(root / "data", num_train=4, num_val=2, size=64, seed=0)
    config = root / "tiny_retina.py"
    text = demo_config_text(paths["root"], max_epochs=max_epochs, samples_per_gpu=2, img_size=64)
    config.write_text(text + extra)
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("train_checks")
    config = _setup(root)
    work_dir = root / "work"
    code = main(["train", str(config), "--work-dir", str(work_dir), "--seed", "3",
                 "--device", "cpu", "--auto-scale-lr",
                 "--cfg-options", "model.test_cfg.score_thr=0.0"])  # fmt: skip
    assert code == 0
    (text_log,) = work_dir.glob("*.log")
    (json_log,) = work_dir.glob("*.log.json")
    lines = [json.loads(x) for x in json_log.read_text().splitlines()]
    return dict(config=config, work_dir=work_dir, text=text_log.read_text(), json=lines)


def test_hook_order_table_is_printed(trained: dict[str, Any]) -> None:
    text = trained["text"]
    assert "Hooks will be executed in the following order:" in text
    table = text.split("Hooks will be executed in the following order:")[1]
    after_iter = table.split("after_train_iter:")[1].split("----")[0]
    names = re.findall(r"\((\w+)\s*\) (\w+)", after_iter)
    assert [n for _, n in names] == [
        "CheckInvalidLossHook", "OptimizerHook", "CheckpointHook", "IterTimerHook", "EvalHook",
        "TextLoggerHook", "TensorboardLoggerHook",
    ]  # fmt: skip
    assert names[0][0] == "HIGH" and names[1][0] == "ABOVE_NORMAL"
    before_epoch = table.split("before_train_epoch:")[1].split("----")[0]
    assert "(NORMAL      ) NumClassCheckHook" in before_epoch


def test_eta_is_shown_and_follows_the_iteration_times(trained: dict[str, Any]) -> None:
    lines = re.findall(
        r"Epoch \[(\d)\]\[(\d)/2\]\tlr: \S+, eta: (\d+):(\d\d):(\d\d), time: ([\d.]+)",
        trained["text"],
    )
    assert len(lines) == 4, trained["text"][-2000:]
    times: list[float] = []
    for k, (epoch, inner, hours, minutes, seconds, t) in enumerate(lines, start=1):
        assert (int(epoch) - 1) * 2 + int(inner) == k
        times.append(float(t))
        eta = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
        expected = sum(times) / len(times) * (4 - k)  # mean time so far x iterations left
        assert abs(eta - expected) <= 1.0, (k, eta, expected)
    assert lines[-1][2:5] == ("0", "00", "00")


def test_auto_scale_lr_prints_and_uses_the_scaled_lr(trained: dict[str, Any]) -> None:
    # 1 GPU x 2 images vs base_batch_size 16: 0.002 * 2 / 16
    assert "auto_scale_lr: optimizer.lr 0.002 -> 0.00025" in trained["text"]
    ckpt = torch.load(trained["work_dir"] / "epoch_2.pth", map_location="cpu", weights_only=False)
    assert ckpt["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(0.00025)
    assert trained["json"][0]["seed"] == 3


def test_val_losses_are_logged_with_the_metrics(trained: dict[str, Any]) -> None:
    val = [x for x in trained["json"] if x.get("mode") == "val"]
    assert [x["epoch"] for x in val] == [1, 2]
    for line in val:
        assert "bbox_mAP" in line and "bbox_mAP_50" in line
        losses = {k: v for k, v in line.items() if k.startswith("val/")}
        assert {"val/loss", "val/loss_cls", "val/loss_bbox"} <= set(losses)
        assert all(math.isfinite(v) and v >= 0 for v in losses.values())
        assert losses["val/loss"] == pytest.approx(
            losses["val/loss_cls"] + losses["val/loss_bbox"], abs=2e-5
        )
    assert "val/loss_cls: " in trained["text"]
    train = [x for x in trained["json"] if x.get("mode") == "train"]
    assert train and not any(k.startswith("val/") for x in train for k in x)


def test_val_loss_equals_a_hand_built_loss_pass_and_keeps_metrics(trained: dict[str, Any]) -> None:
    from detforge.config import load_config
    from detforge.datasets.builder import build_dataloader, build_dataset
    from detforge.engine.hooks import EvalHook
    from detforge.engine.runner import EpochBasedRunner
    from detforge.models.builder import build_detector
    from detforge.utils.checkpoint import load_checkpoint

    cfg = load_config(str(trained["config"]), cfg_options={"model.test_cfg.score_thr": 0.0}).cfg
    model = build_detector(cfg.model)
    load_checkpoint(model, str(trained["work_dir"] / "epoch_2.pth"), map_location="cpu")
    norm = dict(cfg.img_norm_cfg)
    hand_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(type="Resize", img_scale=(64, 64), keep_ratio=True),
        dict(type="RandomFlip", flip_ratio=0.0),
        dict(type="Normalize", **norm),
        dict(type="Pad", size_divisor=32),
        dict(type="DefaultFormatBundle"),
        dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
    ]
    hand = build_dataset(dict(cfg.data.val, pipeline=hand_pipeline, test_mode=False))
    model.eval()
    with torch.no_grad():
        per_image = [model.train_step(build_dataloader(hand, 1, 0, dist=False, shuffle=False)
                                      .collate_fn([hand[i]]))["log_vars"]
                     for i in range(len(hand))]  # fmt: skip
    expected = {k: sum(v[k] for v in per_image) / len(per_image) for k in per_image[0]}

    val_set = build_dataset(dict(cfg.data.val, test_mode=True))
    val_loader = build_dataloader(val_set, 1, 0, dist=False, shuffle=False)
    train_loader = build_dataloader(build_dataset(cfg.data.train), 2, 0, dist=False)
    outputs = []
    for val_loss in (True, False):
        runner = EpochBasedRunner(model, None, work_dir=str(trained["work_dir"]), max_epochs=1)
        runner.data_loader = train_loader
        hook = EvalHook(val_loader, metric="bbox", val_loss=val_loss)
        hook._do_evaluate(runner)
        outputs.append(dict(runner.log_buffer.output))
    with_loss, without = outputs
    assert {k: with_loss[k] for k in without} == without  # metrics unchanged
    assert set(with_loss) - set(without) == {f"val/{k}" for k in expected}
    for key, value in expected.items():
        assert with_loss[f"val/{key}"] == pytest.approx(value, rel=1e-5)
    logged = [x for x in trained["json"] if x.get("mode") == "val"][-1]
    assert logged["val/loss"] == pytest.approx(expected["loss"], abs=2e-5)


def test_tensorboard_events_in_work_dir(trained: dict[str, Any]) -> None:
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(trained["work_dir"] / "tf_logs"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss_cls", "learning_rate", "momentum", "val/loss", "val/bbox_mAP"} <= tags
    assert [e.step for e in acc.Scalars("val/loss")] == [3, 5]


BATCH_FILES: dict[int, list[str]] = {}


@HOOKS.register_module(name="TestPoisonWeightHook", force=True)
class PoisonWeightHook(Hook):
    """Makes the first conv weight NaN before iteration 2; records each batch's files."""

    def before_train_iter(self, runner: Any) -> None:
        if runner.iter == 1:
            with torch.no_grad():
                runner.model.backbone.conv1.weight.fill_(float("nan"))

    def after_train_iter(self, runner: Any) -> None:
        BATCH_FILES[runner.iter + 1] = [m["filename"] for m in runner.data_batch["img_metas"]]


def test_nan_loss_stops_with_iteration_terms_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "custom_hooks = [dict(type='TestPoisonWeightHook', priority='HIGHEST')]\n"
    config = _setup(tmp_path, extra=extra, max_epochs=1)
    BATCH_FILES.clear()
    code = main(["train", str(config), "--work-dir", str(tmp_path / "w"), "--seed", "0",
                 "--device", "cpu", "--no-validate"])  # fmt: skip
    assert code == 1
    message = capsys.readouterr().err
    assert "detforge train: error: non-finite loss" in message
    assert "iteration 2 (epoch 1, batch 2/2)" in message
    assert "loss_cls=nan" in message
    assert len(BATCH_FILES[2]) == 2
    for name in BATCH_FILES[2]:
        assert name.endswith(".png") and name in message
    assert not (tmp_path / "w" / "epoch_1.pth").exists()


def test_class_count_mismatch_fails_before_the_first_iteration(tmp_path: Path, capsys: Any) -> None:
    config = _setup(tmp_path, max_epochs=1)
    work_dir = tmp_path / "w"
    code = main(["train", str(config), "--work-dir", str(work_dir), "--device", "cpu",
                 "--no-validate", "--cfg-options", "model.bbox_head.num_classes=3"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "model.bbox_head.num_classes=3 (RetinaHead)" in err
    assert "has 2 CLASSES ('rectangle', 'ellipse')" in err
    (text_log,) = work_dir.glob("*.log")
    assert "Epoch [1][" not in text_log.read_text()
    (json_log,) = work_dir.glob("*.log.json")
    assert not any('"mode"' in line for line in json_log.read_text().splitlines())


def test_diff_seed_adds_the_rank(tmp_path: Path, monkeypatch: Any) -> None:
    import detforge.apis.train as apis_train
    import detforge.utils.dist as dist

    config = _setup(tmp_path, max_epochs=1)
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(
        apis_train, "train_detector", lambda model, ds, cfg, **kw: seen.append(
            (cfg.seed, kw["meta"]["seed"]))
    )  # fmt: skip
    monkeypatch.setattr(dist, "sync_random_seed", lambda seed=None: seed)  # rank 0's seed
    for rank, flags in ((1, ["--diff-seed"]), (1, []), (0, ["--diff-seed"])):
        monkeypatch.setattr(dist, "get_dist_info", lambda rank=rank: (rank, 2))
        code = main(["train", str(config), "--work-dir", str(tmp_path / "w"), "--seed", "5",
                     "--device", "cpu", *flags])  # fmt: skip
        assert code == 0
    assert seen == [(6, 6), (5, 5), (5, 5)]
