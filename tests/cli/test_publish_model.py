"""``detforge publish-model``: no optimizer/RNG/scaler state, the hash prefix in the name."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from detforge.analysis.publish import publish_model
from detforge.cli.main import main
from detforge.engine.checkpoint_save import save_checkpoint
from detforge.utils.checkpoint import CheckpointError, load_checkpoint, read_checkpoint


def _training_checkpoint(path: Path) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 8, 8))
    model.CLASSES = ("a", "b")  # type: ignore[assignment]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    meta = dict(epoch=3, iter=30, config="model = dict()",
                rng=dict(torch=torch.get_rng_state(), python=list(random.getstate()[1])),
                fp16=dict(loss_scaler=dict(scale=512.0)))  # fmt: skip
    save_checkpoint(model, path, optimizer=optimizer, meta=meta)
    return model


def test_published_checkpoint_loads_without_training_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "epoch_3.pth"
    model = _training_checkpoint(source)
    assert "optimizer" in torch.load(source, weights_only=True)
    assert main(["publish-model", str(source), str(tmp_path / "out" / "tiny_1x.pth")]) == 0
    [published] = (tmp_path / "out").iterdir()
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f"tiny_1x-{digest[:8]}.pth"
    assert str(published) in capsys.readouterr().out

    checkpoint, _ = read_checkpoint(published)
    assert "optimizer" not in checkpoint
    assert set(checkpoint["meta"]) >= {"epoch", "iter", "config", "CLASSES"}
    assert not {"rng", "fp16"} & set(checkpoint["meta"])
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))
    load_checkpoint(fresh, published, strict=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)


def test_out_name_without_pth_and_bad_inputs(tmp_path: Path) -> None:
    source = tmp_path / "epoch_1.pth"
    _training_checkpoint(source)
    out = publish_model(source, tmp_path / "model")
    assert out.parent == tmp_path and out.name.startswith("model-") and out.suffix == ".pth"
    assert len(out.stem.split("-")[-1]) == 8
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*missing\.pth"):
        publish_model(tmp_path / "missing.pth", tmp_path / "x.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(source.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*truncated\.pth"):
        publish_model(truncated, tmp_path / "x.pth")
    with pytest.raises(SystemExit, match=r"cannot read checkpoint .*truncated\.pth"):
        main(["publish-model", str(truncated), str(tmp_path / "x.pth")])
    assert not list(tmp_path.glob("x-*.pth"))  # nothing written
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pth")
    with pytest.raises(SystemExit, match=r"plain\.pth is not a training checkpoint"):
        main(["publish-model", str(tmp_path / "plain.pth"), str(tmp_path / "x.pth")])


def test_empty_state_dict_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": {}}, empty)
    with pytest.raises(CheckpointError, match=r"empty\.pth: its state_dict holds no tensor"):
        publish_model(empty, tmp_path / "x.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(SystemExit, match=r"list\.pth is not a training checkpoint"):
        main(["publish-model", str(tmp_path / "list.pth"), str(tmp_path / "x.pth")])
    assert not list(tmp_path.glob("x-*.pth"))
