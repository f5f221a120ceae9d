"""Keypoint heatmap helpers of CenterNet and CornerNet (MMDetection v2's ``gaussian_target``).

Training: every object puts a 2D gaussian peak (value 1 at its keypoint) into the heatmap of its
class, of a radius chosen so that a keypoint anywhere inside still yields a box with IoU
``min_overlap`` to the object (:func:`gaussian_radius`); overlapping peaks keep their maximum.
Testing: a max-pool keeps the local maxima (:func:`get_local_maximum`), the ``k`` best
(class, position) pairs are taken over all classes (:func:`get_topk_from_heatmap`) and the
regression maps are read at those positions (:func:`transpose_and_gather_feat`).

Numerics are v2's: the gaussian is computed in the heatmap's dtype and values below
``eps * max`` are zeroed; the radius formulas are evaluated in the type of the sizes passed in
(0-dim float32 tensors from the heads, as in v2, so the integer radius truncates identically).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "gather_feat",
    "gaussian2D",
    "gaussian_radius",
    "gen_gaussian_target",
    "get_local_maximum",
    "get_topk_from_heatmap",
    "transpose_and_gather_feat",
]


def gaussian2D(
    radius: int,
    sigma: float = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The ``(2 radius + 1)²`` kernel ``exp(-(x² + y²) / (2 sigma²))`` (peak 1), values under
    ``eps * max`` set to 0.

    Example:
        >>> gaussian2D(1, sigma=1)[1]
        tensor([0.6065, 1.0000, 0.6065])
    """
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device).view(1, -1)
    y = torch.arange(-radius, radius + 1, dtype=dtype, device=device).view(-1, 1)
    h = (-(x * x + y * y) / (2 * sigma * sigma)).exp()
    h[h < torch.finfo(h.dtype).eps * h.max()] = 0
    return h


def gen_gaussian_target(
    heatmap: torch.Tensor, center: Sequence[int], radius: int, k: float = 1
) -> torch.Tensor:
    """Draw a gaussian of ``radius`` (sigma ``(2 radius + 1) / 6``, peak ``k``) at ``center``
    ``(x, y)`` into the 2D ``heatmap`` in place, keeping the maximum where peaks overlap;
    the part outside the map is cut off.

    Returns:
        ``heatmap`` itself.

    Example:
        >>> heat = gen_gaussian_target(torch.zeros(3, 4), (0, 1), 1)
        >>> heat[1]
        tensor([1.0000, 0.1353, 0.0000, 0.0000])
    """
    diameter = 2 * radius + 1
    kernel = gaussian2D(radius, sigma=diameter / 6, dtype=heatmap.dtype, device=heatmap.device)
    x, y = int(center[0]), int(center[1])
    height, width = heatmap.shape[:2]
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    region = heatmap[y - top : y + bottom, x - left : x + right]
    patch = kernel[radius - top : radius + bottom, radius - left : radius + right]
    torch.maximum(region, patch * k, out=region)
    return heatmap


def gaussian_radius(det_size: Sequence[Any], min_overlap: float) -> Any:
    """The largest corner displacement ``r`` that keeps IoU ``>= min_overlap`` with a box of
    ``det_size = (height, width)``: the minimum over CornerNet's three cases (one corner
    inside and one outside, both inside, both outside), each the smaller root of a quadratic.

    Example:
        >>> round(gaussian_radius((10.0, 20.0), 0.3), 4)
        2.8902
    """
    height, width = det_size
    # one corner inside the box, the other outside
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 - sqrt(b1**2 - 4 * c1)) / 2
    # both corners inside
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 - sqrt(b2**2 - 4 * 4 * c2)) / (2 * 4)
    # both corners outside
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + sqrt(b3**2 - 4 * a3 * c3)) / (2 * a3)
    return min(r1, r2, r3)


def get_local_maximum(heat: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """``heat`` where a value is the maximum of its ``kernel x kernel`` window (ties
    included), else 0.

    Example:
        >>> get_local_maximum(torch.tensor([[[[1., 3., 2., 2.]]]]))
        tensor([[[[0., 3., 0., 2.]]]])
    """
    pad = (kernel - 1) // 2
    hmax = F.max_pool2d(heat, kernel, stride=1, padding=pad)
    return heat * (hmax == heat).float()


def get_topk_from_heatmap(
    scores: torch.Tensor, k: int = 20
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` best (class, position) pairs of ``scores [B, C, H, W]`` per image.

    Returns:
        ``(scores, inds, classes, ys, xs)``, each ``[B, k]``: ``inds`` is the flat position
        ``y * W + x``, ``ys`` is integer, ``xs`` float (v2's types).

    Example:
        >>> heat = torch.zeros(1, 2, 2, 3)
        >>> heat[0, 1, 1, 2] = 0.9
        >>> [t[0, 0].item() for t in get_topk_from_heatmap(heat, k=1)]
        [0.8999999761581421, 5, 1, 1, 2.0]
    """
    batch, _, height, width = scores.size()
    topk_scores, topk_inds = torch.topk(scores.view(batch, -1), k)
    topk_clses = topk_inds // (height * width)
    topk_inds = topk_inds % (height * width)
    topk_ys = topk_inds // width
    topk_xs = (topk_inds % width).int().float()
    return topk_scores, topk_inds, topk_clses, topk_ys, topk_xs


def gather_feat(
    feat: torch.Tensor, ind: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Rows ``ind [B, K]`` of ``feat [B, N, D]`` (``[B, K, D]``); with ``mask [B, K]`` only
    the masked rows, flattened to ``[M, D]``."""
    dim = feat.size(2)
    gathered = feat.gather(1, ind.unsqueeze(2).repeat(1, 1, dim))
    if mask is not None:
        gathered = gathered[mask.unsqueeze(2).expand_as(gathered)].view(-1, dim)
    return gathered


def transpose_and_gather_feat(feat: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    """The channel vectors of ``feat [B, D, H, W]`` at flat positions ``ind [B, K]``:
    ``[B, K, D]``.

    Example:
        >>> feat = torch.arange(8.).view(1, 2, 2, 2)
        >>> transpose_and_gather_feat(feat, torch.tensor([[3, 0]]))
        tensor([[[3., 7.],
                 [0., 4.]]])
    """
    feat = feat.permute(0, 2, 3, 1).contiguous()
    return gather_feat(feat.view(feat.size(0), -1, feat.size(3)), ind)
