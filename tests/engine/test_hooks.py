"""Hooks: LR schedule per iteration, log.json schema, EvalHook save_best, invalid loss."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.engine.hooks import EvalHook, Hook, InvalidLossError, LogBuffer
from detforge.engine.lr import build_lr_schedule, lr_at
from tests.engine.test_runner import make_loader, make_runner


class LrRecorder(Hook):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def before_train_iter(self, runner: Any) -> None:
        self.lrs.append(runner.current_lr()[0])


def test_lr_follows_step_with_linear_warmup(tmp_path: Any) -> None:
    lr_cfg = dict(policy="step", warmup="linear", warmup_iters=5, warmup_ratio=0.1, step=[2])
    r = make_runner(tmp_path, max_epochs=3)
    r.register_training_hooks(dict(lr_cfg), dict(grad_clip=dict(max_norm=1.0)))
    rec = LrRecorder()
    r.register_hook(rec, "LOWEST")
    r.run([make_loader(4)], [("train", 1)])
    sched = build_lr_schedule(lr_cfg)
    expected = [lr_at(sched, 0.1, it // 4, it, 3, 12, 4) for it in range(12)]
    assert rec.lrs == pytest.approx(expected)
    assert rec.lrs[0] == pytest.approx(0.01) and rec.lrs[-1] == pytest.approx(0.01)


class FakeDataset:
    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.calls = 0

    def evaluate(self, results: list[Any], logger: Any = None, metric: str = "bbox") -> dict:
        self.calls += 1
        return {"bbox_mAP": self.scores[self.calls - 1], "bbox_mAP_50": 0.5}


class EvalLoader(list):
    dataset: FakeDataset


def test_eval_hook_save_best_rotates_and_logs(tmp_path: Any) -> None:
    loader = EvalLoader([1, 2])
    loader.dataset = FakeDataset([0.2, 0.5, 0.4])
    hook = EvalHook(loader, save_best="auto", test_fn=lambda model, dl: list(dl))
    r = make_runner(tmp_path, max_epochs=3)
    r.register_training_hooks(
        None, dict(grad_clip=None), log_config=dict(interval=2, hooks=[dict(type="TextLoggerHook")])
    )
    r.register_hook(hook, "LOW")
    r.run([make_loader(4)], [("train", 1)])
    best = sorted(p.name for p in tmp_path.glob("best_*.pth"))
    assert best == ["best_bbox_mAP_epoch_2.pth"]
    assert r.meta["hook_msgs"]["best_score"] == pytest.approx(0.5)

    (log,) = tmp_path.glob("*.log.json")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert "epoch" not in lines[0]
    train = [x for x in lines[1:] if x["mode"] == "train"]
    assert list(train[0])[:4] == ["mode", "epoch", "iter", "lr"]
    assert {"data_time", "loss", "time"} <= set(train[0])
    assert [(x["epoch"], x["iter"]) for x in train[:2]] == [(1, 2), (1, 4)]
    val = [x for x in lines if x.get("mode") == "val"]
    assert [x["bbox_mAP"] for x in val] == [0.2, 0.5, 0.4] and "time" not in val[0]


class NanModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)

    def train_step(self, data: dict[str, Any], optimizer: Any = None) -> dict[str, Any]:
        loss = self.fc(data["img"]).sum() * float("nan")
        return dict(loss=loss, log_vars=dict(loss_cls=loss.item(), loss=loss.item()), num_samples=2)


def test_check_invalid_loss_raises_with_context(tmp_path: Any) -> None:
    r = make_runner(tmp_path, max_epochs=1)
    r.model = NanModel()
    r.register_training_hooks(
        None, custom_hooks_config=[dict(type="CheckInvalidLossHook", interval=1)]
    )
    with pytest.raises(InvalidLossError, match=r"iteration 1.*loss_cls.*0\.jpg"):
        r.run([make_loader(2)], [("train", 1)])


def test_log_buffer_weighted_average() -> None:
    buf = LogBuffer()
    for v, n in [(1.0, 1), (2.0, 1), (4.0, 2)]:
        buf.update({"x": v}, n)
    buf.average(2)
    assert buf.output["x"] == pytest.approx(10 / 3)


@pytest.mark.parametrize(
    ("start", "resumed_at", "max_epochs", "evaluations"),
    [(0, 0, 2, 3), (1, 2, 3, 2), (1, 0, 2, 2), (2, 0, 3, 2), (None, 0, 2, 2)],
)
def test_eval_hook_start_evaluates_before_the_first_epoch_as_v2(
    tmp_path: Any, start: int | None, resumed_at: int, max_epochs: int, evaluations: int
) -> None:
    """v2 (mmcv): ``start`` <= the epoch training begins at also evaluates before it."""
    loader = EvalLoader([1])
    loader.dataset = FakeDataset([0.1] * 5)
    r = make_runner(tmp_path, max_epochs=max_epochs)
    r.register_hook(EvalHook(loader, start=start, test_fn=lambda m, dl: list(dl)), "LOW")
    r._epoch = resumed_at  # as after resuming from epoch_<resumed_at>.pth
    r.run([make_loader(2)], [("train", 1)])
    assert loader.dataset.calls == evaluations


def test_eval_hook_rejects_a_list_of_loaders_and_run_takes_max_epochs(tmp_path: Any) -> None:
    """v2: EvalHook([loader]) is a TypeError; ``runner.run(loaders, workflow, max_epochs)``."""
    with pytest.raises(TypeError, match="EvalHook: dataloader must be a torch DataLoader"):
        EvalHook([torch.utils.data.DataLoader([1, 2])])
    r = make_runner(tmp_path)
    with pytest.warns(DeprecationWarning, match="max_epochs in run is deprecated"):
        r.run([make_loader(2)], [("train", 1)], 2)
    assert r.epoch == 2 and r.iter == 4
    with pytest.raises(TypeError, match="data_loaders must be a list"):
        loader = torch.utils.data.DataLoader(make_loader(2), batch_size=None)
        make_runner(tmp_path, max_epochs=1).run(loader, [("train", 1)])  # type: ignore[arg-type]
