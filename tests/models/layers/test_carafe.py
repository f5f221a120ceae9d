"""CARAFE: the PyTorch op against a loop reference and mmcv's kernel; CARAFEPack."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import CARAFEPack, carafe
from tests.models.neck_goldens import assert_outputs_close, load


def _slow_carafe(
    features: torch.Tensor, masks: torch.Tensor, k: int, groups: int, s: int
) -> torch.Tensor:
    """mmcv's naive kernel, written as explicit loops over every output element."""
    n, c, h, w = features.shape
    feat, mask = features.tolist(), masks.tolist()
    out = torch.zeros(n, c, h * s, w * s, dtype=features.dtype)
    r = (k - 1) // 2
    for b in range(n):
        for ch in range(c):
            group = ch // (c // groups)
            for y in range(h * s):
                for x in range(w * s):
                    acc = 0.0
                    for iy in range(y // s - r, y // s + r + 1):
                        for ix in range(x // s - r, x // s + r + 1):
                            if not (0 <= iy < h and 0 <= ix < w):
                                continue
                            tap = (group * k + iy - y // s + r) * k + ix - x // s + r
                            acc += feat[b][ch][iy][ix] * mask[b][tap][y][x]
                    out[b, ch, y, x] = acc
    return out


@pytest.mark.parametrize(
    ("shape", "k", "groups", "s"),
    [
        ((1, 2, 3, 4), 1, 1, 1),
        ((2, 4, 3, 5), 3, 2, 2),
        ((1, 6, 4, 3), 5, 3, 3),
        ((1, 4, 2, 2), 5, 1, 2),  # kernel wider than the map: most taps read the zero border
    ],
)
def test_matches_the_loop_reference(shape: tuple[int, int, int, int], k: int, groups: int, s: int):
    g = torch.Generator().manual_seed(sum(shape) + k)
    n, _, h, w = shape
    feat = torch.randn(shape, generator=g, dtype=torch.float64)
    masks = torch.randn((n, groups * k * k, h * s, w * s), generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        carafe(feat, masks, k, groups, s), _slow_carafe(feat, masks, k, groups, s)
    )


def test_gradients_are_those_of_the_formula() -> None:
    g = torch.Generator().manual_seed(0)
    feat = torch.randn((1, 4, 3, 3), generator=g, dtype=torch.float64, requires_grad=True)
    masks = torch.randn((1, 18, 6, 6), generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, m: carafe(f, m, 3, 2, 2), (feat, masks))


def test_matches_mmcv_kernel() -> None:
    """mmcv 2.1.0's CARAFE kernel source compiled for the CPU (tools/goldens/carafe.py)."""
    case = load("carafe", "op.pt")
    for item in case["cases"]:
        feat = item["features"].clone().requires_grad_(True)
        masks = item["masks"].clone().requires_grad_(True)
        out = carafe(feat, masks, item["kernel_size"], item["group_size"], item["scale_factor"])
        assert_outputs_close([out], [item["output"]])
        out.backward(item["grad_output"])
        assert_outputs_close([feat.grad, masks.grad], [item["grad_features"], item["grad_masks"]])


def test_pack_matches_mmcv() -> None:
    pack = CARAFEPack(**load("carafe", "pack.pt")["kwargs"])
    data = load("carafe", "pack.pt")
    pack.load_state_dict(data["weights"], strict=True)
    with torch.no_grad():
        assert_outputs_close([pack(data["input"])], [data["output"]])


def test_pack_keys_normaliser_and_init() -> None:
    pack = CARAFEPack(6, 2, up_kernel=3, up_group=2, compressed_channels=4)
    assert list(pack.state_dict()) == [
        "channel_compressor.weight",
        "channel_compressor.bias",
        "content_encoder.weight",
        "content_encoder.bias",
    ]
    assert pack.content_encoder.out_channels == 3 * 3 * 2 * 2 * 2
    assert pack.content_encoder.weight.std() < 0.002  # mmcv: Normal(std=0.001)
    mask = pack.kernel_normalizer(torch.randn(1, 72, 4, 5))
    assert mask.shape == (1, 18, 8, 10)
    torch.testing.assert_close(mask.view(1, 2, 9, 8, 10).sum(2), torch.ones(1, 2, 8, 10))
    assert pack(torch.randn(2, 6, 4, 5)).shape == (2, 6, 8, 10)


def test_uniform_kernels_average_the_neighbourhood() -> None:
    feat = torch.arange(9.0).reshape(1, 1, 3, 3)
    masks = torch.full((1, 9, 3, 3), 1 / 9)
    assert carafe(feat, masks, 3, 1, 1)[0, 0, 1, 1].item() == pytest.approx(4.0)  # centre
    assert carafe(feat, masks, 3, 1, 1)[0, 0, 0, 0].item() == pytest.approx(8 / 9)  # zero border


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((1, 2, 2, 2), (1, 4, 4, 4), 2, 1, 2), "odd"),
        (((1, 3, 2, 2), (1, 18, 4, 4), 3, 2, 2), "group_size"),
        (((1, 2, 2, 2), (1, 9, 4, 5), 3, 1, 2), r"\(1, 9, 4, 4\)"),
    ],
)
def test_bad_shapes_are_named(args: tuple, match: str) -> None:
    feat_shape, mask_shape, k, groups, s = args
    with pytest.raises(ValueError, match=match):
        carafe(torch.zeros(feat_shape), torch.zeros(mask_shape), k, groups, s)
    with pytest.raises(ValueError, match="up_kernel"):
        CARAFEPack(4, 2, up_kernel=4)
