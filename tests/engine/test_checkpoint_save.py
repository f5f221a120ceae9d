"""save_checkpoint (v2 layout, atomic) and find_latest_checkpoint."""

from __future__ import annotations

import errno
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import detforge
from detforge.engine.checkpoint_save import (
    check_latest_link,
    find_latest_checkpoint,
    point_latest,
    save_checkpoint,
)
from detforge.utils.checkpoint import CheckpointError, load_checkpoint


class Tiny(nn.Module):
    CLASSES = ("cat", "dog")

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3)))


class FakeScaler:
    def state_dict(self) -> dict[str, Any]:
        return {"scale": 512.0, "_growth_tracker": 3}


def _trained(seed: int = 0) -> tuple[Tiny, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_through_load_checkpoint(tmp_path: Path) -> None:
    model, opt = _trained()
    path = tmp_path / "epoch_3.pth"
    meta = dict(
        epoch=3,
        iter=30,
        config="model = dict(type='Tiny')",
        seed=np.int64(42),
        hook_msgs=dict(last_ckpt=str(path), best_score=np.float32(0.5)),
    )
    save_checkpoint(model, path, optimizer=opt, meta=meta, scaler=FakeScaler())

    fresh = Tiny()
    checkpoint = load_checkpoint(fresh, path, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    got = checkpoint["meta"]
    assert got["epoch"] == 3 and got["iter"] == 30 and got["seed"] == 42
    assert got["config"] == "model = dict(type='Tiny')"
    assert got["hook_msgs"] == {"last_ckpt": str(path), "best_score": 0.5}
    assert got["CLASSES"] == ("cat", "dog")
    assert got["detforge_version"] == detforge.__version__
    assert isinstance(got["time"], str) and len(got["time"].split()) >= 5
    assert got["fp16"] == {"loss_scaler": {"scale": 512.0, "_growth_tracker": 3}}

    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    for p_old, p_new in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(
            opt.state[p_old]["momentum_buffer"], fresh_opt.state[p_new]["momentum_buffer"]
        )


def test_state_dict_is_cpu_detached_and_without_module_prefix(tmp_path: Path) -> None:
    model, opt = _trained()
    save_checkpoint(nn.DataParallel(model), tmp_path / "a.pth", optimizer={"main": opt})
    raw = torch.load(tmp_path / "a.pth", weights_only=True)
    assert list(raw["state_dict"]) == list(model.state_dict())
    assert all(v.device.type == "cpu" and not v.requires_grad for v in raw["state_dict"].values())
    assert set(raw["optimizer"]) == {"main"}
    assert "optimizer" not in torch.load(tmp_path / "a.pth", weights_only=True)["optimizer"]

    outer = nn.Module()
    outer.backbone = nn.DataParallel(nn.DataParallel(Tiny()))
    save_checkpoint(outer, tmp_path / "b.pth")
    keys = list(torch.load(tmp_path / "b.pth", weights_only=True)["state_dict"])
    assert keys[0] == "backbone.conv.weight"
    assert not any("module" in k for k in keys)
    assert "CLASSES" not in torch.load(tmp_path / "b.pth", weights_only=True)["meta"]


def test_bad_arguments_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"x\.pth"):
        save_checkpoint(Tiny(), tmp_path / "x.pth", meta=[("epoch", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"x\.pth"):
        save_checkpoint(Tiny(), tmp_path / "x.pth", optimizer={"a": 1})  # type: ignore[dict-item]
    assert not (tmp_path / "x.pth").exists()


def test_full_disk_keeps_previous_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "latest.pth"
    old_model, _ = _trained(seed=1)
    save_checkpoint(old_model, path, meta=dict(epoch=1))
    before = path.read_bytes()

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])  # a torn half is on disk
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    new_model, _ = _trained(seed=2)
    with pytest.raises(OSError, match=re.escape(str(path))) as info:
        save_checkpoint(new_model, path, meta=dict(epoch=2))
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pth"]
    assert torch.load(path, weights_only=True)["meta"]["epoch"] == 1


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _find(folder: Path) -> tuple[str | None, str]:
    """find_latest_checkpoint's answer and the text of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = find_latest_checkpoint(folder)
    return found, "\n".join(str(w.message) for w in caught)


def test_find_latest_checkpoint(tmp_path: Path) -> None:
    model = Tiny()
    assert _find(tmp_path) == (None, f"no readable checkpoint in {tmp_path}")
    for name in ["epoch_1.pth", "epoch_2.pth", "epoch_10.pth", "best_bbox_mAP_epoch_12.pth"]:
        save_checkpoint(model, tmp_path / name)
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    assert _find(tmp_path) == (str(tmp_path / "epoch_10.pth"), "")  # numeric order

    _corrupt(tmp_path / "epoch_10.pth")
    found, said = _find(tmp_path)
    assert found == str(tmp_path / "epoch_2.pth")
    assert f"cannot read checkpoint {tmp_path / 'epoch_10.pth'} (truncated" in said

    save_checkpoint(model, tmp_path / "latest.pth")
    assert _find(tmp_path) == (str(tmp_path / "latest.pth"), "")
    _corrupt(tmp_path / "latest.pth")
    found, said = _find(tmp_path)
    assert found == str(tmp_path / "epoch_2.pth")
    assert str(tmp_path / "latest.pth") in said and "epoch_10.pth" in said

    (tmp_path / "epoch_2.pth").unlink()
    (tmp_path / "latest.pth").unlink()
    os.symlink(tmp_path / "epoch_2.pth", tmp_path / "latest.pth")  # dangling link
    assert _find(tmp_path)[0] == str(tmp_path / "epoch_1.pth")

    iters = tmp_path / "iters"
    for n in (500, 1000):
        save_checkpoint(model, iters / f"iter_{n}.pth")
    assert _find(iters) == (str(iters / "iter_1000.pth"), "")
    found, said = _find(tmp_path / "missing")
    assert found is None and "does not exist" in said


def test_latest_directory_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    save_checkpoint(Tiny(), tmp_path / "epoch_1.pth")
    (tmp_path / "latest.pth").mkdir()
    with pytest.raises(CheckpointError, match=r"latest\.pth is a directory"):
        check_latest_link(tmp_path)
    with pytest.raises(CheckpointError, match=r"cannot point .*latest\.pth at epoch_1\.pth"):
        point_latest(tmp_path, "epoch_1.pth", str(tmp_path / "epoch_1.pth"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.pth", "latest.pth"]
    check_latest_link(tmp_path / "nowhere")  # no folder yet: nothing to refuse
