"""The training-time checks: class count before the first iteration, non-finite losses."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from detforge.engine.hooks import (
    CheckInvalidLossHook,
    InvalidLossError,
    NumClassCheckHook,
    register_default_checks,
)
from detforge.engine.runner import EpochBasedRunner, IterBasedRunner
from detforge.errors import ConfigError
from tests.engine.test_runner import make_loader


class Head(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fc = nn.Linear(2, 1)


class HeadModel(nn.Module):
    def __init__(self, num_classes: int = 3, bad_term: str | None = None) -> None:
        super().__init__()
        self.bbox_head = Head(num_classes)
        self.bad_term = bad_term
        self.steps = 0

    def train_step(self, data: dict[str, Any], optimizer: Any = None) -> dict[str, Any]:
        self.steps += 1
        loss = self.bbox_head.fc(data["img"]).pow(2).mean()
        log_vars = dict(loss_cls=loss.item(), loss_bbox=0.5, loss=loss.item() + 0.5)
        if self.bad_term is not None and self.steps == 3:
            log_vars[self.bad_term] = float("inf")
            log_vars["loss"] = float("inf")
        return dict(loss=loss, log_vars=log_vars, num_samples=2)


class Loader(list):
    dataset: Any


class Classes:
    def __init__(self, classes: Any) -> None:
        self.CLASSES = classes


def _loader(classes: Any, n: int = 4) -> Loader:
    loader = Loader(make_loader(n))
    loader.dataset = Classes(classes)
    return loader


def _runner(tmp_path: Any, model: nn.Module, cls: Any = EpochBasedRunner, **kw: Any) -> Any:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return cls(model, opt, work_dir=str(tmp_path), logger=logging.getLogger("t"), **kw)


def test_class_mismatch_stops_iter_runner_before_the_first_step(tmp_path: Any) -> None:
    model = HeadModel(num_classes=3)
    runner = _runner(tmp_path, model, IterBasedRunner, max_iters=4)
    runner.register_training_hooks(None, dict(grad_clip=None))
    register_default_checks(runner)
    with pytest.raises(ConfigError, match=r"model\.bbox_head\.num_classes=3 \(Head\).* has 2 CL"):
        runner.run([_loader(("a", "b"))], [("train", 1)])
    assert model.steps == 0


def test_class_mismatch_mentions_overrides_a_later_dict_discarded(tmp_path: Any) -> None:
    from detforge.config.overrides import merge_overrides

    options = {"model.bbox_head.num_classes": 2, "model": dict(pretrained="x")}
    merge_overrides({"model": {}}, options, source="CFG_OPTIONS")
    runner = _runner(tmp_path, HeadModel(num_classes=3), max_epochs=1)
    runner.register_hook(NumClassCheckHook())
    try:
        with pytest.raises(ConfigError, match=r"discarded by a later whole-dict override: "
                           r"CFG_OPTIONS: model\.bbox_head\.num_classes \(by model\)"):  # fmt: skip
            runner.run([_loader(("a", "b"))], [("train", 1)])
    finally:
        merge_overrides({}, {}, source="CFG_OPTIONS")  # forget them for later tests


def test_class_names_given_as_a_string_get_a_hint(tmp_path: Any) -> None:
    runner = _runner(tmp_path, HeadModel(num_classes=1), max_epochs=1)
    runner.register_hook(NumClassCheckHook())
    with pytest.raises(ConfigError, match=r"add a comma.*CLASSES = \('person',\)"):
        runner.run([_loader("person")], [("train", 1)])


def test_matching_classes_train_normally(tmp_path: Any) -> None:
    model = HeadModel(num_classes=2)
    runner = _runner(tmp_path, model, max_epochs=1)
    runner.register_training_hooks(None, dict(grad_clip=None))
    register_default_checks(runner)
    runner.run([_loader(("a", "b"))], [("train", 1)])
    assert model.steps == 4


def test_default_checks_order_and_no_duplicates(tmp_path: Any) -> None:
    runner = _runner(tmp_path, HeadModel(), max_epochs=1)
    runner.register_training_hooks(
        None, dict(grad_clip=None), custom_hooks_config=[dict(type="CheckInvalidLossHook")]
    )
    register_default_checks(runner)
    register_default_checks(runner)
    names = [type(h).__name__ for h in runner.hooks]
    assert names.count("CheckInvalidLossHook") == 1 and names.count("NumClassCheckHook") == 1
    configured = next(h for h in runner.hooks if isinstance(h, CheckInvalidLossHook))
    assert configured.interval == 50  # the user's hook is kept as configured

    fresh = _runner(tmp_path, HeadModel(), max_epochs=1)
    fresh.register_training_hooks(None, dict(grad_clip=None))
    register_default_checks(fresh)
    names = [type(h).__name__ for h in fresh.hooks]
    assert names.index("CheckInvalidLossHook") < names.index("OptimizerHook")


def test_infinite_term_is_named_with_its_value(tmp_path: Any) -> None:
    model = HeadModel(num_classes=2, bad_term="loss_bbox")
    runner = _runner(tmp_path, model, max_epochs=1)
    runner.register_training_hooks(None, dict(grad_clip=None))
    register_default_checks(runner)
    with pytest.raises(InvalidLossError) as info:
        runner.run([_loader(("a", "b"))], [("train", 1)])
    message = str(info.value)
    assert "iteration 3 (epoch 1, batch 3/4): loss_bbox=inf;" in message
    assert "loss_cls" not in message and "2.jpg, 2.jpg" in message
