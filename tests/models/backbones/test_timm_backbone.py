"""TIMMBackbone (``mmcls.TIMMBackbone``): timm models as backbones, weights from local files only.

The tests that build timm models skip when timm is not installed (it is an optional extra).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from detforge.models.backbones import timm_backbone
from detforge.models.backbones.timm_backbone import TIMMBackbone, find_timm_weights
from detforge.registry import MODELS


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DETFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "home" / "checkpoints" / "timm"
    folder.mkdir(parents=True)
    return folder


def test_missing_timm_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def no_timm(name: str, package: str | None = None) -> object:
        if name == "timm":
            raise ImportError("No module named 'timm'")
        return real(name, package)

    monkeypatch.setattr(timm_backbone.importlib, "import_module", no_timm)
    with pytest.raises(ImportError, match="pip install timm"):
        TIMMBackbone(model_name="resnet18")


def test_missing_weights_say_where_to_put_them(cache: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"never downloads.*'resnet18\.safetensors'"
    ) as info:
        find_timm_weights("resnet18")
    assert str(cache) in str(info.value)
    (cache / "resnet18.pth").write_bytes(b"")
    assert find_timm_weights("resnet18") == cache / "resnet18.pth"


def test_pretrained_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="checkpoint_path"):
        TIMMBackbone(model_name="resnet18", pretrained="weights.pth")  # type: ignore[arg-type]


def test_features_and_local_pretrained_weights(cache: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model("resnet18", pretrained=False)
    torch.save(reference.state_dict(), cache / "resnet18.pth")
    net = MODELS.build(
        dict(
            type="mmcls.TIMMBackbone",
            model_name="resnet18",
            features_only=True,
            pretrained=True,
            out_indices=(2, 4),
            norm_layer="BN",
        )
    )
    assert not torch.equal(net.timm_model.conv1.weight, reference.conv1.weight)  # not yet
    net.init_weights()
    assert torch.equal(net.timm_model.conv1.weight, reference.conv1.weight)
    assert torch.equal(
        net.timm_model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var
    )
    outs = net.eval()(torch.rand(1, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(1, 128, 8, 8), (1, 512, 2, 2)]
    assert all(k.startswith("timm_model.") for k in net.state_dict())


def test_checkpoint_path_and_missing_file(cache: Path, tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": reference.state_dict()}, path)
    net = TIMMBackbone(model_name="resnet18", features_only=True, checkpoint_path=str(path))
    net.init_weights()
    assert torch.equal(net.timm_model.conv1.weight, reference.conv1.weight)
    plain = TIMMBackbone(model_name="resnet18", pretrained=True)
    with pytest.raises(FileNotFoundError, match="resnet18"):
        plain.init_weights()
    pooled = plain.eval()(torch.rand(1, 3, 32, 32))
    assert [tuple(o.shape) for o in pooled] == [(1, 512, 1, 1)]  # no classifier, no pooling
