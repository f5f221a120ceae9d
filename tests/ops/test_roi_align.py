"""RoIAlign / RoIPool wrappers against a slow transcription of mmcv's RoIAlign kernel."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.ops import RoIAlign, RoIPool, roi_align


def _bilinear(feat: torch.Tensor, y: float, x: float) -> torch.Tensor:
    height, width = feat.shape[-2:]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return torch.zeros(feat.shape[0], dtype=torch.float64)
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    f = feat.double()
    return (
        hy * hx * f[:, y_low, x_low]
        + hy * lx * f[:, y_low, x_high]
        + ly * hx * f[:, y_high, x_low]
        + ly * lx * f[:, y_high, x_high]
    )


def _slow_roi_align(
    feats: torch.Tensor, roi: torch.Tensor, out: int, scale: float, ratio: int, aligned: bool
) -> torch.Tensor:
    offset = 0.5 if aligned else 0.0
    batch, x1, y1, x2, y2 = roi.tolist()
    feat = feats[int(batch)]
    start_w, start_h = x1 * scale - offset, y1 * scale - offset
    roi_w, roi_h = x2 * scale - offset - start_w, y2 * scale - offset - start_h
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_w, bin_h = roi_w / out, roi_h / out
    grid_h = ratio if ratio > 0 else math.ceil(roi_h / out)
    grid_w = ratio if ratio > 0 else math.ceil(roi_w / out)
    count = max(grid_h * grid_w, 1)
    result = torch.zeros(feat.shape[0], out, out, dtype=torch.float64)
    for ph in range(out):
        for pw in range(out):
            acc = torch.zeros(feat.shape[0], dtype=torch.float64)
            for iy in range(grid_h):
                y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    acc += _bilinear(feat, y, x)
            result[:, ph, pw] = acc / count
    return result


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [0, 2])
def test_roi_align_matches_slow_reference(aligned: bool, ratio: int) -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 3, 12, 16, generator=gen)
    rois = torch.tensor(
        [[0, 3.0, 5.0, 40.0, 30.0], [1, -6.0, -2.0, 20.0, 9.0], [1, 50.0, 30.0, 70.0, 52.0]]
    )
    layer = RoIAlign(output_size=3, spatial_scale=0.25, sampling_ratio=ratio, aligned=aligned)
    out = layer(feats, rois)
    assert out.shape == (3, 3, 3, 3)
    for k in range(len(rois)):
        ref = _slow_roi_align(feats, rois[k], 3, 0.25, ratio, aligned)
        torch.testing.assert_close(out[k].double(), ref, rtol=1e-5, atol=1e-6)


def test_roi_align_deprecated_names_and_errors() -> None:
    with pytest.warns(DeprecationWarning):
        layer = RoIAlign(out_size=7, sample_num=2)
    assert layer.output_size == (7, 7) and layer.sampling_ratio == 2
    with pytest.raises(NotImplementedError, match="pool_mode"):
        RoIAlign(7, pool_mode="max")
    with pytest.raises(ValueError, match=r"rois must be \[K, 5\]"):
        roi_align(torch.rand(1, 1, 4, 4), torch.zeros(2, 4), 2)


def test_roi_pool_takes_bin_maxima() -> None:
    feat = torch.arange(36.0).view(1, 1, 6, 6)
    out = RoIPool(output_size=3)(feat, torch.tensor([[0.0, 0.0, 0.0, 5.0, 5.0]]))
    assert out.view(-1).tolist() == [7.0, 9.0, 11.0, 19.0, 21.0, 23.0, 31.0, 33.0, 35.0]
