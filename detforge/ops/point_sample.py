"""Point sampling (mmcv's ``point_sample`` family) and ``SimpleRoIAlign``, on ``grid_sample``.

PointRend works with points given in *relative* coordinates: ``(x, y)`` in ``[0, 1]^2`` of a
RoI (``rel_roi_point``) or of a whole image / feature map (``rel_img_point``). The numerics
follow mmcv 2.1 exactly:

* a RoI point ``(u, v)`` of the box ``(x1, y1, x2, y2)`` is the image point
  ``(x1 + u (x2 - x1), y1 + v (y2 - y1))`` (no gradient flows through this);
* an absolute image point on a map of width ``W`` and height ``H`` with ``spatial_scale`` ``s``
  is the relative point ``(x s / W, y s / H)``;
* :func:`point_sample` reads ``input`` bilinearly at relative points with
  ``grid_sample(input, 2 p - 1, align_corners=False)`` (zero outside), so the relative point
  ``p`` lands on the continuous pixel coordinate ``p W - 0.5``;
* :func:`generate_grid` gives the centres of a regular ``h x w`` grid,
  ``((j + 0.5) / w, (i + 0.5) / h)`` in row-major order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = [
    "SimpleRoIAlign",
    "abs_img_point_to_rel_img_point",
    "generate_grid",
    "point_sample",
    "rel_roi_point_to_abs_img_point",
    "rel_roi_point_to_rel_img_point",
]


def point_sample(
    input: torch.Tensor, points: torch.Tensor, align_corners: bool = False
) -> torch.Tensor:
    """Bilinear samples of ``input`` ``[N, C, H, W]`` at relative ``points``.

    Args:
        input: Feature maps.
        points: ``Tensor[N, P, 2]`` (or ``[N, h, w, 2]``) ``(x, y)`` in ``[0, 1]``.
        align_corners: ``grid_sample``'s flag (``SimpleRoIAlign(aligned=False)`` sets it).

    Returns:
        ``Tensor[N, C, P]`` (or ``[N, C, h, w]``).

    Example:
        >>> feat = torch.arange(4.).view(1, 1, 2, 2)
        >>> point_sample(feat, torch.tensor([[[0.25, 0.25], [0.5, 0.5]]])).tolist()
        [[[0.0, 1.5]]]
    """
    flat = points.dim() == 3
    grid = points.unsqueeze(2) if flat else points
    out = F.grid_sample(input, grid * 2.0 - 1.0, align_corners=align_corners)
    return out.squeeze(3) if flat else out


def generate_grid(num_grid: int, size: int | tuple[int, int], device: torch.device) -> torch.Tensor:
    """Relative centres of a regular ``h x w`` grid, ``Tensor[num_grid, h * w, 2]`` (row-major).

    Example:
        >>> generate_grid(1, (1, 2), torch.device('cpu')).tolist()
        [[[0.25, 0.5], [0.75, 0.5]]]
    """
    h, w = _pair(size)
    affine = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], device=device)
    grid = F.affine_grid(affine, [1, 1, h, w], align_corners=False)
    return ((grid + 1.0) / 2.0).view(1, -1, 2).expand(num_grid, -1, -1)


def rel_roi_point_to_abs_img_point(
    rois: torch.Tensor, rel_roi_points: torch.Tensor
) -> torch.Tensor:
    """RoI-relative points ``[N, P, 2]`` of ``rois`` (``[N, 4]`` or ``[N, 5]``) as absolute
    image points ``[N, P, 2]`` (computed without gradient, as mmcv).

    Raises:
        ValueError: the shapes do not match.
    """
    if rois.dim() != 2 or rois.size(1) not in (4, 5):
        raise ValueError(f"rois must be [N, 4] or [N, 5], got {tuple(rois.shape)}")
    if rel_roi_points.dim() != 3 or rel_roi_points.shape[0] != rois.shape[0]:
        raise ValueError(
            f"rel_roi_points must be [{rois.shape[0]}, P, 2], got {tuple(rel_roi_points.shape)}"
        )
    with torch.no_grad():
        boxes = rois[:, 1:] if rois.size(1) == 5 else rois
        xs = rel_roi_points[:, :, 0] * (boxes[:, None, 2] - boxes[:, None, 0]) + boxes[:, None, 0]
        ys = rel_roi_points[:, :, 1] * (boxes[:, None, 3] - boxes[:, None, 1]) + boxes[:, None, 1]
        return torch.stack([xs, ys], dim=2)


def abs_img_point_to_rel_img_point(
    abs_img_points: torch.Tensor, size: tuple[int, int], spatial_scale: float = 1.0
) -> torch.Tensor:
    """Absolute points ``[N, P, 2]`` relative to a map of ``size = (h, w)`` pixels after
    scaling by ``spatial_scale`` (``1 / stride`` for a feature map)."""
    h, w = int(size[0]), int(size[1])
    scale = abs_img_points.new_tensor([w, h], dtype=torch.float32).view(1, 1, 2)
    return abs_img_points / scale * spatial_scale


def rel_roi_point_to_rel_img_point(
    rois: torch.Tensor,
    rel_roi_points: torch.Tensor,
    size: tuple[int, int],
    spatial_scale: float = 1.0,
) -> torch.Tensor:
    """RoI-relative points as points relative to a map of ``size = (h, w)`` (see the module
    docstring).

    Example:
        >>> rel_roi_point_to_rel_img_point(torch.tensor([[0., 8., 4., 16., 12.]]),
        ...                                torch.tensor([[[0.5, 0.5]]]), (4, 8), 0.25).tolist()
        [[[0.375, 0.5]]]
    """
    return abs_img_point_to_rel_img_point(
        rel_roi_point_to_abs_img_point(rois, rel_roi_points), size, spatial_scale
    )


class SimpleRoIAlign(nn.Module):
    """mmcv's ``SimpleRoIAlign`` (PointRend): one bilinear sample at the centre of each bin.

    Args:
        output_size: ``h`` and ``w`` of each pooled map.
        spatial_scale: ``1 / stride`` of the feature map.
        aligned: ``False`` samples with ``align_corners=True`` (MMDetection's legacy layer).

    Example:
        >>> layer = SimpleRoIAlign(output_size=2, spatial_scale=1.0)
        >>> feat = torch.arange(16.).view(1, 1, 4, 4)
        >>> layer(feat, torch.tensor([[0., 0., 0., 4., 4.]])).view(-1).tolist()
        [2.5, 4.5, 10.5, 12.5]
    """

    def __init__(
        self, output_size: int | tuple[int, int], spatial_scale: float, aligned: bool = True
    ) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.aligned = aligned

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """``Tensor[K, C, h, w]`` for ``rois [K, 5]`` on ``features [B, C, H, W]``."""
        if rois.dim() != 2 or rois.size(1) != 5:
            raise ValueError(f"SimpleRoIAlign: rois must be [K, 5], got {tuple(rois.shape)}")
        num_rois, channels = rois.size(0), features.size(1)
        out = features.new_zeros(num_rois, channels, self.output_size[0] * self.output_size[1])
        rel_roi_points = generate_grid(num_rois, self.output_size, rois.device)
        size = (features.size(2), features.size(3))
        for batch_ind in range(features.size(0)):
            inds = rois[:, 0].long() == batch_ind
            if inds.any():
                points = rel_roi_point_to_rel_img_point(
                    rois[inds], rel_roi_points[inds], size, self.spatial_scale
                )
                sampled = point_sample(
                    features[batch_ind : batch_ind + 1],
                    points.unsqueeze(0),
                    align_corners=not self.aligned,
                )  # [1, C, n, h*w]
                out[inds] = sampled[0].transpose(0, 1)
        return out.view(num_rois, channels, *self.output_size)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"aligned={self.aligned}"
        )
