"""Dialect normaliser: rewrite any MMDetection 2.6–2.28 config into the 2.28 form.

Each rewrite is reported as one line (returned, and logged as a warning):

* ``total_epochs`` → ``runner=dict(type='EpochBasedRunner', max_epochs=...)``;
* top-level ``train_cfg``/``test_cfg`` → ``model.train_cfg``/``model.test_cfg`` (merged over what
  the model already has, so an override arriving through ``CFG_OPTIONS`` wins);
* ``model.pretrained`` → ``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``;
* RPN ``nms_thr``/``max_num``/``nms_post``/``nms_across_levels`` →
  ``nms=dict(type='nms', iou_threshold=...)`` and ``max_per_img`` (``GARPNHead`` still reads
  ``nms_post`` and ``nms_across_levels`` in v2.28: kept for it);
* NMS ``iou_thr`` → ``iou_threshold``;
* ``data.imgs_per_gpu`` → ``data.samples_per_gpu``;
* a ``_delete_`` key left on a key that its base did not have (mmcv keeps it) is removed.

The input is not modified, so the raw merged config stays available for comparison with
MMCV's.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from typing import Any

from detforge.config.config import DELETE_KEY, Config, merge_into
from detforge.errors import ConfigError, ConfigTypeError

__all__ = ["normalize_config"]

logger = logging.getLogger("detforge")

_V3_KEYS = (
    "train_dataloader",
    "param_scheduler",
    "optim_wrapper",
    "default_scope",
    "val_evaluator",
)
_NMS_TYPES = ("nms", "soft_nms")


def normalize_config(cfg: Config) -> tuple[Config, list[str]]:
    """Return ``(normalised copy of cfg, one message per rewrite)``.

    Raises:
        ConfigError: the config is an MMDetection 3.x config, or two spellings of one setting
            disagree (e.g. ``total_epochs=12`` with ``runner.max_epochs=24``).

    Example:
        >>> cfg = Config(dict(total_epochs=12, model=dict(type='RetinaNet')))
        >>> new, notes = normalize_config(cfg)
        >>> new.runner
        {'type': 'EpochBasedRunner', 'max_epochs': 12}
        >>> notes
        ["total_epochs=12 -> runner=dict(type='EpochBasedRunner', max_epochs=12)"]
    """
    _reject_v3(cfg)
    new = copy.deepcopy(cfg)
    notes: list[str] = []
    steps: list[Callable[[Config, list[str]], None]] = [
        _total_epochs,
        _model_cfgs,
        _pretrained,
        _rpn_proposal_keys,
        _nms_iou_thr,
        _imgs_per_gpu,
        _leftover_delete,
    ]
    for step in steps:
        step(new, notes)
    for note in notes:
        logger.warning("config: %s", note)
    return new, notes


def _where(cfg: Config) -> str:
    return cfg.filename or "config"


def _reject_v3(cfg: Config) -> None:
    found = [k for k in _V3_KEYS if k in cfg]
    for key in ("train_cfg", "val_cfg", "test_cfg"):
        value = cfg.get(key)
        if isinstance(value, dict) and str(value.get("type", "")).endswith("Loop"):
            found.append(f"{key}.type={value['type']!r}")
    if found:
        raise ConfigError(
            f"{_where(cfg)} is an MMDetection 3.x config ({', '.join(found)}); detforge reads "
            "MMDetection 2.x configs (data=dict(...), lr_config, runner, ...)"
        )


def _total_epochs(cfg: Config, notes: list[str]) -> None:
    if "total_epochs" not in cfg:
        return
    total = cfg.pop("total_epochs")
    runner = cfg.get("runner")
    if runner is None:
        cfg.runner = dict(type="EpochBasedRunner", max_epochs=total)
        notes.append(
            f"total_epochs={total} -> runner=dict(type='EpochBasedRunner', max_epochs={total})"
        )
        return
    if not isinstance(runner, dict):
        raise ConfigTypeError(
            f"{_where(cfg)}: runner must be dict(type='EpochBasedRunner', max_epochs=...), "
            f"got {runner!r}"
        )
    max_epochs = runner.get("max_epochs")
    if max_epochs is not None and max_epochs != total:
        raise ConfigError(
            f"{_where(cfg)}: total_epochs={total} and runner.max_epochs={max_epochs} disagree; "
            "delete total_epochs (the old spelling)"
        )
    notes.append(f"total_epochs={total} dropped: runner={dict(runner)} already sets the schedule")


def _model_cfgs(cfg: Config, notes: list[str]) -> None:
    for key in ("train_cfg", "test_cfg"):
        if key not in cfg:
            continue
        value = cfg.pop(key)
        if value is None:
            notes.append(f"top-level {key}=None dropped")
            continue
        model = cfg.get("model")
        if not isinstance(model, dict):
            raise ConfigError(f"{_where(cfg)}: top-level {key} given but the config has no model")
        if isinstance(model.get(key), dict) and isinstance(value, dict):
            if value.pop(DELETE_KEY, False):
                model[key] = value
            else:
                model[key] = merge_into(value, model[key])
            notes.append(f"top-level {key} merged into model.{key} (the 2.9+ layout)")
        else:
            model[key] = value
            notes.append(f"top-level {key} moved to model.{key} (the 2.9+ layout)")


def _pretrained(cfg: Config, notes: list[str]) -> None:
    model = cfg.get("model")
    if not isinstance(model, dict) or "pretrained" not in model:
        return
    checkpoint = model.pop("pretrained")
    if checkpoint is None:
        notes.append("model.pretrained=None dropped")
        return
    backbone = model.get("backbone")
    if not isinstance(backbone, dict):
        raise ConfigError(
            f"{_where(cfg)}: model.pretrained={checkpoint!r} but model has no backbone"
        )
    init_cfg = dict(type="Pretrained", checkpoint=checkpoint)
    backbone["init_cfg"] = init_cfg
    notes.append(f"model.pretrained={checkpoint!r} -> model.backbone.init_cfg={init_cfg}")


def _rpn_proposal_keys(cfg: Config, notes: list[str]) -> None:
    model = cfg.get("model")
    if not isinstance(model, dict):
        return
    for path in ("train_cfg.rpn_proposal", "test_cfg.rpn"):
        section, name = path.split(".")
        rpn = model.get(section)
        rpn = rpn.get(name) if isinstance(rpn, dict) else None  # not a dict: the build says so
        if isinstance(rpn, dict):
            head = model.get("rpn_head")
            guided = isinstance(head, dict) and head.get("type") == "GARPNHead"
            _upgrade_rpn(rpn, f"model.{path}", _where(cfg), notes, keep_post=guided)


def _upgrade_rpn(
    rpn: dict[str, Any], path: str, where: str, notes: list[str], keep_post: bool = False
) -> None:
    if "nms_thr" in rpn:
        thr = rpn.pop("nms_thr")
        nms = rpn.get("nms")
        if isinstance(nms, dict) and nms.get("iou_threshold", thr) != thr:
            raise ConfigError(
                f"{where}: {path}.nms_thr={thr} and {path}.nms.iou_threshold="
                f"{nms['iou_threshold']} disagree; delete nms_thr (the old spelling)"
            )
        if not isinstance(nms, dict):
            rpn["nms"] = dict(type="nms", iou_threshold=thr)
        notes.append(f"{path}.nms_thr={thr} -> {path}.nms=dict(type='nms', iou_threshold={thr})")
    if "max_num" in rpn:
        max_num = rpn.pop("max_num")
        if rpn.get("max_per_img", max_num) != max_num:
            raise ConfigError(
                f"{where}: {path}.max_num={max_num} and {path}.max_per_img={rpn['max_per_img']} "
                "disagree; delete max_num (the old spelling)"
            )
        rpn["max_per_img"] = max_num
        notes.append(f"{path}.max_num={max_num} -> {path}.max_per_img={max_num}")
    for old in () if keep_post else ("nms_post", "nms_across_levels"):
        if old in rpn:
            value = rpn.pop(old)
            notes.append(f"{path}.{old}={value} dropped (not used since MMDetection 2.10)")


def _walk_dicts(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    if isinstance(node, dict):
        yield node, path
        for key, value in node.items():
            yield from _walk_dicts(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _walk_dicts(value, f"{path}.{index}")


def _walk_config(cfg: Config) -> list[tuple[dict[str, Any], str]]:
    return [found for key in cfg for found in _walk_dicts(cfg[key], key)]


def _nms_iou_thr(cfg: Config, notes: list[str]) -> None:
    for node, path in _walk_config(cfg):
        if node.get("type") in _NMS_TYPES and "iou_thr" in node:
            node["iou_threshold"] = node.pop("iou_thr")
            notes.append(f"{path}.iou_thr -> {path}.iou_threshold={node['iou_threshold']}")


def _imgs_per_gpu(cfg: Config, notes: list[str]) -> None:
    data = cfg.get("data")
    if not isinstance(data, dict) or "imgs_per_gpu" not in data:
        return
    value = data.pop("imgs_per_gpu")
    if "samples_per_gpu" in data and data["samples_per_gpu"] != value:
        notes.append(
            f"data.imgs_per_gpu={value} replaces data.samples_per_gpu={data['samples_per_gpu']}"
            " (MMDetection gives imgs_per_gpu precedence)"
        )
    else:
        notes.append(f"data.imgs_per_gpu={value} -> data.samples_per_gpu={value}")
    data["samples_per_gpu"] = value


def _leftover_delete(cfg: Config, notes: list[str]) -> None:
    for node, path in _walk_config(cfg):
        if DELETE_KEY in node:
            node.pop(DELETE_KEY)
            notes.append(f"{path}.{DELETE_KEY} removed (its base had no '{path}' to delete)")
