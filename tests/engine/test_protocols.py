"""The ``Runner`` protocol: both runners satisfy it, and it names exactly what hooks use.

mypy checks this module too (pyproject's ``files``): the typed assignments below fail
``make test`` when a runner stops conforming structurally.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from detforge.engine.hooks import EvalHook, OptimizerHook
from detforge.engine.protocols import Runner
from detforge.engine.runner import EpochBasedRunner, IterBasedRunner
from detforge.errors import ConfigError

HOOKS_DIR = Path(__file__).resolve().parents[2] / "detforge" / "engine" / "hooks"


def _members() -> set[str]:
    """The protocol's attributes and methods (typing's private helper is 3.12-only)."""
    return {n for n in vars(Runner) if not n.startswith("_")} | set(Runner.__annotations__)


def _runner_uses() -> dict[str, str]:
    """``{name: 'file:line'}`` of every ``runner.name`` / ``getattr(runner, 'name')`` in the
    hooks package."""
    found: dict[str, str] = {}
    for path in sorted(HOOKS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name = None
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                name = node.attr if node.value.id == "runner" else None
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "runner"
                and isinstance(node.args[1], ast.Constant)
            ):
                name = str(node.args[1].value)
            if name is not None:
                found.setdefault(name, f"{path.name}:{getattr(node, 'lineno', '?')}")
    return found


def test_runners_satisfy_the_protocol() -> None:
    model = torch.nn.Linear(1, 1)
    runners: list[Runner] = [  # mypy: structural check of both classes
        EpochBasedRunner(model, max_epochs=1),
        IterBasedRunner(model, max_iters=1),
    ]
    for runner in runners:
        assert isinstance(runner, Runner)


def test_an_object_without_the_members_is_not_a_runner() -> None:
    fake = SimpleNamespace(model=torch.nn.Linear(1, 1), epoch=0, iter=0)
    assert not isinstance(fake, Runner)


def test_protocol_names_exactly_what_hooks_use() -> None:
    uses = _runner_uses()
    members = _members()
    assert set(uses) - members == set(), {k: uses[k] for k in set(uses) - members}
    assert members - set(uses) == set(), "protocol members no hook uses"


def test_optimizer_hook_names_a_dict_of_optimizers() -> None:
    model = torch.nn.Linear(1, 1)
    opts = dict(a=torch.optim.SGD(model.parameters(), lr=0.1))
    runner = EpochBasedRunner(model, opts, max_epochs=1)
    runner.outputs = dict(loss=model(torch.ones(1, 1)).sum())
    with pytest.raises(TypeError, match=r"OptimizerHook steps one torch Optimizer.*dict"):
        OptimizerHook().after_train_iter(runner)


def test_save_best_without_work_dir_is_a_config_error() -> None:
    runner = EpochBasedRunner(torch.nn.Linear(1, 1), logger=logging.getLogger("t"), max_epochs=1)
    hook = EvalHook(SimpleNamespace(dataset=None), save_best="bbox_mAP")
    with pytest.raises(ConfigError, match=r"save_best='bbox_mAP'.*no work_dir.*best_bbox_mAP"):
        hook._save_best(runner, 0.5)
