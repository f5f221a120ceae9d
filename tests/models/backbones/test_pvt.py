"""PyramidVisionTransformer(V2): layout, original-checkpoint conversion, position embedding
(golden outputs: test_pvt_golden.py)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from detforge.models.backbones.pvt import (
    PyramidVisionTransformer,
    PyramidVisionTransformerV2,
    pvt_convert,
)
from detforge.registry import MODELS


def _v1(**kwargs: object) -> PyramidVisionTransformer:
    args: dict[str, object] = dict(embed_dims=4, num_layers=[1, 2, 1, 1], pretrain_img_size=64)
    args.update(kwargs)
    return PyramidVisionTransformer(**args)  # type: ignore[arg-type]


def _v2(**kwargs: object) -> PyramidVisionTransformerV2:
    args: dict[str, object] = dict(embed_dims=4, num_layers=[1, 2, 1, 1])
    args.update(kwargs)
    return PyramidVisionTransformerV2(**args)  # type: ignore[arg-type]


def test_v1_and_v2_layouts() -> None:
    v1 = list(_v1().state_dict())
    assert "layers.0.1.0.pos_embed" in v1 and "layers.1.1.2.ffn.layers.3.weight" in v1
    assert "layers.0.1.1.attn.sr.weight" in v1 and "layers.3.1.1.attn.sr.weight" not in v1
    assert not any(k.startswith("layers.0.2.") for k in v1)  # v1 has no stage norm
    v2 = _v2().state_dict()
    assert "layers.0.2.weight" in v2 and not any("pos_embed" in k for k in v2)
    assert v2["layers.0.1.0.ffn.layers.1.weight"].shape == (32, 1, 3, 3)  # depth-wise conv
    assert v2["layers.0.0.projection.weight"].shape == (4, 3, 7, 7)
    assert v2["layers.0.1.0.attn.attn.in_proj_weight"].shape == (12, 4)


def test_forward_shapes_and_position_embedding_resize() -> None:
    v1 = _v1(out_indices=(1, 3)).eval()
    assert [tuple(o.shape) for o in v1(torch.rand(2, 3, 64, 96))] == [(2, 8, 8, 12), (2, 32, 2, 3)]
    v2 = _v2().eval()
    outs = v2(torch.rand(1, 3, 50, 70))  # overlapping embeddings: ceil divisions
    assert [tuple(o.shape[2:]) for o in outs] == [(13, 18), (7, 9), (4, 5), (2, 3)]


def _to_original(state: dict[str, torch.Tensor], v2: bool) -> OrderedDict[str, torch.Tensor]:
    """Our keys -> the original PVT repository's (the inverse of pvt_convert)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        parts = key.split(".")
        stage = int(parts[1]) + 1
        if parts[2] == "0":
            out[f"patch_embed{stage}." + ".".join(parts[3:]).replace("projection", "proj")] = value
        elif parts[2] == "2":
            out[f"norm{stage}." + parts[3]] = value
        elif parts[4] == "pos_embed":
            out[f"pos_embed{stage}"] = value
        else:
            block = int(parts[3]) - (0 if v2 else 1)
            rest = ".".join(parts[4:])
            head = f"block{stage}.{block}."
            if rest.startswith("attn.attn.in_proj_"):
                kind = rest.rsplit("_", 1)[1]
                channels = value.shape[0] // 3
                out[head + f"attn.q.{kind}"] = value[:channels]
                out[head + f"attn.kv.{kind}"] = value[channels:]
            elif rest.startswith("attn.attn.out_proj."):
                out[head + "attn.proj." + parts[-1]] = value
            elif rest.startswith("ffn.layers."):
                index = {"0": "fc1", "1": "dwconv.dwconv", "3": "fc2", "4": "fc2"}[parts[6]]
                if index.startswith("fc") and parts[-1] == "weight":
                    value = value.flatten(1)
                out[head + f"mlp.{index}.{parts[-1]}"] = value
            else:
                out[head + rest] = value
    out["head.weight"] = torch.zeros(10, 4)
    out["cls_token"] = torch.zeros(1, 1, 32)
    return out


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_pvt_convert_loads_an_original_checkpoint(version: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    make = _v1 if version == "v1" else _v2
    source = make()
    for param in source.parameters():
        torch.nn.init.normal_(param)
    original = _to_original(source.state_dict(), v2=version == "v2")
    converted = pvt_convert(original)
    assert set(converted) == set(source.state_dict())
    path = tmp_path / "pvt.pth"
    torch.save(original, path)
    net = make(init_cfg=dict(checkpoint=str(path)))
    net.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key


def test_stage4_cls_token_dropped_from_position_embedding() -> None:
    out = pvt_convert({"pos_embed4": torch.arange(50.0).view(1, 50, 1)})
    assert out["layers.3.1.0.pos_embed"].flatten().tolist() == list(range(1, 50))


def test_random_init_and_errors() -> None:
    net = _v2()
    net.init_weights()
    assert torch.equal(net.layers[0][2].weight, torch.ones(4))
    proj = net.layers[0][0].projection
    assert proj.bias.abs().sum() == 0 and 0.05 < proj.weight.std() < 0.2  # N(0, sqrt(2/196))
    with pytest.raises(KeyError, match="num_stages=4"):
        _v1(num_heads=[1, 2])
    assert isinstance(
        MODELS.build(
            dict(type="PyramidVisionTransformerV2", embed_dims=4, num_layers=[1, 1, 1, 1])
        ),
        PyramidVisionTransformerV2,
    )
