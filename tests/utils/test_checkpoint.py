"""Checkpoint loading: formats, named weights from the local cache, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from detforge.utils.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_dict,
    read_checkpoint,
    resolve_checkpoint,
)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DETFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "home" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def test_v2_checkpoint_with_meta_and_module_prefix(tmp_path: Path) -> None:
    src = Tiny()
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    path = tmp_path / "epoch_1.pth"
    torch.save({"meta": {"CLASSES": ("a",), "epoch": 1}, "state_dict": state}, path)
    dst = Tiny()
    ckpt = load_checkpoint(dst, str(path), strict=True)
    assert ckpt["meta"]["CLASSES"] == ("a",)
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value)


def test_v3_checkpoint_drops_data_preprocessor(tmp_path: Path) -> None:
    state = dict(Tiny().state_dict())
    state["data_preprocessor.mean"] = torch.zeros(3, 1, 1)
    path = tmp_path / "v3.pth"
    torch.save({"meta": {}, "state_dict": state, "message_hub": {}}, path)
    load_checkpoint(Tiny(), path, strict=True)


def test_strict_mismatch_lists_the_keys(tmp_path: Path) -> None:
    state = dict(Tiny().state_dict())
    state.pop("conv.bias")
    state["extra.weight"] = torch.zeros(1)
    state["bn.weight"] = torch.zeros(7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(Tiny(), path, strict=True)
    message = str(info.value)
    assert f"{path} does not fit Tiny (5 of 7 tensors; 1 of another shape; 1 missing" in message
    assert "conv.bias" in message and "extra.weight" in message
    assert "bn.weight: checkpoint (7,) vs model (4,)" in message
    assert "--allow-partial" in message
    model = Tiny()
    before = model.bn.weight.clone()
    load_checkpoint(model, path, strict=False)  # loads what fits, warns about the rest
    assert torch.equal(model.bn.weight, before)


def test_strict_ignores_counters_constants_and_extra_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Old checkpoints lack BatchNorm counters, EMA runs leave ``ema_*`` buffers: both load
    strictly; a missing running statistic does not."""
    src = Tiny()
    src.register_buffer("project", torch.arange(3.0))  # a constant the module computes itself
    state = dict(src.state_dict())
    del state["bn.num_batches_tracked"], state["project"]
    state["ema_conv_weight"] = state["conv.weight"].clone()
    path = tmp_path / "old.pth"
    torch.save({"state_dict": state}, path)
    dst = Tiny()
    dst.register_buffer("project", torch.arange(3.0))
    with caplog.at_level("INFO", logger="detforge"):
        load_checkpoint(dst, path, strict=True)
    assert torch.equal(dst.conv.weight, src.conv.weight)
    assert "6 of 8 tensors; 1 missing (0 weights); 1 unexpected; 1 BatchNorm" in caplog.text
    del state["bn.running_var"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"(?s)missing in checkpoint \(1\):.*bn.running_var"):
        load_checkpoint(Tiny(), path, strict=True)


def test_nothing_fits_fails_even_when_not_strict(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save({"state_dict": nn.Linear(3, 2).state_dict()}, other)
    empty = tmp_path / "empty.pth"
    torch.save({"state_dict": {}}, empty)
    for path in (other, empty):
        with pytest.raises(CheckpointError, match=rf"{path} does not fit Tiny \(0 of 7 tensors"):
            load_checkpoint(Tiny(), path, strict=False)


def test_wrapped_model_loads_into_the_inner_model(tmp_path: Path) -> None:
    src = Tiny()
    path = tmp_path / "epoch_1.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    wrapped = nn.DataParallel(Tiny())
    load_checkpoint(wrapped, path, strict=True)
    assert torch.equal(wrapped.module.conv.weight, src.conv.weight)


def test_torchvision_name_resolves_from_the_cache(cache: Path) -> None:
    torch.save(Tiny().state_dict(), cache / "resnet50-0676ba61.pth")
    assert resolve_checkpoint("torchvision://resnet50") == cache / "resnet50-0676ba61.pth"


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        ("msra/hrnetv2_w32", "hrnetv2_w32-dc9eeb4f.pth"),
        ("regnetx_3.2gf", "regnetx_3.2gf-c2599b0f.pth"),
        ("res2net101_v1d_26w_4s", "res2net101_v1d_26w_4s_mmdetv2-f0a600f9.pth"),
        ("resnest50", "resnest50_d2-7497a55b.pth"),
    ],
)
def test_model_zoo_backbone_names_resolve_to_mmcv_file_names(
    cache: Path, name: str, file_name: str
) -> None:
    (cache / file_name).write_bytes(b"")
    assert resolve_checkpoint(f"open-mmlab://{name}") == cache / file_name


def test_missing_named_weights_say_where_to_put_them(cache: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint("torchvision://resnet101")
    message = str(info.value)
    assert "resnet101-63fe2227.pth" in message and str(cache) in message
    with pytest.raises(CheckpointError, match=r"does not download"):
        resolve_checkpoint("https://example.invalid/x.pth")
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint("/no/such/file.pth")


def test_url_resolves_from_the_cache_by_file_name(cache: Path, tmp_path: Path) -> None:
    # v2 configs name pretrained backbones by URL (Swin, PVT, ConvNeXt); torch.hub keeps them
    url = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny.pth"
    with pytest.raises(CheckpointError, match=r"'swin_tiny\.pth' into .*home"):
        resolve_checkpoint(url)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(Tiny().state_dict(), hub / "swin_tiny.pth")
    assert resolve_checkpoint(url) == hub / "swin_tiny.pth"
    assert resolve_checkpoint(url + "?download=1") == hub / "swin_tiny.pth"


class _Evil:
    def __reduce__(self):  # pragma: no cover - never executed by weights_only loading
        return (print, ("code ran",))


def test_pickles_that_need_code_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"state_dict": {"x": _Evil()}}, protocol=2))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(Tiny(), path)
    message = str(info.value)
    assert message.startswith(f"refused to read checkpoint {path}: it contains code")
    assert "(print)" in message and "weights_only" not in message
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth: the file is empty"):
        load_checkpoint(Tiny(), tmp_path / "empty.pth")


def test_torchvision_resnet_maps_onto_detforge_resnet(cache: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    from detforge.models.backbones import ResNet

    tv = torchvision.models.resnet18(weights=None)
    torch.save(tv.state_dict(), cache / "resnet18-f37072fd.pth")
    ours = ResNet(depth=18)
    report = load_state_dict(ours, read_checkpoint("torchvision://resnet18")[1], strict=True)
    assert report.missing == [] and sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert torch.equal(ours.conv1.weight, tv.conv1.weight)
    assert torch.equal(ours.layer4[1].bn2.running_var, tv.layer4[1].bn2.running_var)


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        ("open-mmlab://vgg16_caffe", "vgg16_caffe-292e1171.pth"),
        ("open-mmlab://darknet53", "darknet53-a628ea1b.pth"),
        ("open-mmlab://mmdet/mobilenet_v2", "mobilenet_v2_batch256_imagenet-ff34753d.pth"),
    ],
)
def test_one_stage_backbone_names_resolve_to_mmcv_file_names(
    cache: Path, name: str, file_name: str
) -> None:
    with pytest.raises(CheckpointError, match=file_name):
        resolve_checkpoint(name)
    torch.save(Tiny().state_dict(), cache / file_name)
    assert resolve_checkpoint(name) == cache / file_name
