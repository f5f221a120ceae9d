"""Point priors for anchor-free heads: ``MlvlPointGenerator`` and the legacy ``PointGenerator``.

Both follow MMDetection v2.28 (``mmdet.core.anchor.point_generator``) number for number: level
``l`` has one point per feature cell, cell ``(i, j)`` sitting at
``((j + offset) * stride_w, (i + offset) * stride_h)``, ordered row-major (x fastest).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.modules.utils import _pair

from detforge.errors import InvalidArgumentError
from detforge.registry import TASK_UTILS

__all__ = ["MlvlPointGenerator", "PointGenerator"]

Device = str | torch.device


def _meshgrid(
    x: torch.Tensor, y: torch.Tensor, row_major: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened grids of ``x`` (fastest) and ``y``; swapped when ``row_major`` is False."""
    xx = x.repeat(len(y))
    yy = y.view(-1, 1).repeat(1, len(x)).view(-1)
    return (xx, yy) if row_major else (yy, xx)


def _valid_grid(
    featmap_size: Sequence[int], valid_size: Sequence[int], device: Device, owner: str
) -> torch.Tensor:
    """Bool ``Tensor[h * w]``: True for cells in the top-left ``valid_size`` corner."""
    feat_h, feat_w = int(featmap_size[0]), int(featmap_size[1])
    valid_h, valid_w = int(valid_size[0]), int(valid_size[1])
    if valid_h > feat_h or valid_w > feat_w:
        raise InvalidArgumentError(
            f"{owner}: valid size {(valid_h, valid_w)} exceeds the feature map size "
            f"{(feat_h, feat_w)}"
        )
    valid_x = torch.zeros(feat_w, dtype=torch.bool, device=device)
    valid_y = torch.zeros(feat_h, dtype=torch.bool, device=device)
    valid_x[:valid_w] = True
    valid_y[:valid_h] = True
    valid_xx, valid_yy = _meshgrid(valid_x, valid_y)
    return valid_xx & valid_yy


@TASK_UTILS.register_module()
class MlvlPointGenerator:
    """One point per feature cell on every level (``mmdet.core.anchor.MlvlPointGenerator``).

    Args:
        strides: Per level ``s`` or ``(s_w, s_h)``.
        offset: Position of the point inside its cell, as a fraction of the stride (0 = the
            cell's top-left corner, 0.5 = its centre).

    Example:
        >>> gen = MlvlPointGenerator([4], offset=0.5)
        >>> gen.grid_priors([(2, 2)], device='cpu')[0].tolist()
        [[2.0, 2.0], [6.0, 2.0], [2.0, 6.0], [6.0, 6.0]]
        >>> gen.grid_priors([(1, 1)], device='cpu', with_stride=True)[0].tolist()
        [[2.0, 2.0, 4.0, 4.0]]
    """

    def __init__(self, strides: Sequence[int | Sequence[int]], offset: float = 0.5) -> None:
        self.strides: list[tuple[int, int]] = [_pair(stride) for stride in strides]
        self.offset = offset

    @property
    def num_levels(self) -> int:
        """Number of feature levels."""
        return len(self.strides)

    @property
    def num_base_priors(self) -> list[int]:
        """Points per feature cell, per level (always 1)."""
        return [1 for _ in range(len(self.strides))]

    def _check_levels(self, featmap_sizes: Sequence[Sequence[int]], name: str) -> None:
        if len(featmap_sizes) != self.num_levels:
            raise InvalidArgumentError(
                f"MlvlPointGenerator.{name}: got {len(featmap_sizes)} feature map sizes for "
                f"{self.num_levels} levels (strides={self.strides})"
            )

    def grid_priors(
        self,
        featmap_sizes: Sequence[Sequence[int]],
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
        with_stride: bool = False,
    ) -> list[torch.Tensor]:
        """Points of every level: ``Tensor[h_l * w_l, 2]`` (x, y), or ``[..., 4]`` (x, y,
        stride_w, stride_h) with ``with_stride``.

        Args:
            featmap_sizes: ``(h, w)`` of each level's feature map.
            dtype: Point dtype.
            device: Point device.
            with_stride: Append the level's strides to every point.
        """
        self._check_levels(featmap_sizes, "grid_priors")
        return [
            self.single_level_grid_priors(
                size, level_idx=i, dtype=dtype, device=device, with_stride=with_stride
            )
            for i, size in enumerate(featmap_sizes)
        ]

    def single_level_grid_priors(
        self,
        featmap_size: Sequence[int],
        level_idx: int,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
        with_stride: bool = False,
    ) -> torch.Tensor:
        """Points of one level, row-major: ``Tensor[h * w, 2]`` or ``Tensor[h * w, 4]``."""
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        shift_x = ((torch.arange(0, int(feat_w), device=device) + self.offset) * stride_w).to(dtype)
        shift_y = ((torch.arange(0, int(feat_h), device=device) + self.offset) * stride_h).to(dtype)
        shift_xx, shift_yy = _meshgrid(shift_x, shift_y)
        if not with_stride:
            return torch.stack([shift_xx, shift_yy], dim=-1)
        strides_w = shift_xx.new_full((len(shift_xx),), stride_w)
        strides_h = shift_xx.new_full((len(shift_yy),), stride_h)
        return torch.stack([shift_xx, shift_yy, strides_w, strides_h], dim=-1)

    def valid_flags(
        self,
        featmap_sizes: Sequence[Sequence[int]],
        pad_shape: Sequence[int],
        device: Device = "cpu",
    ) -> list[torch.Tensor]:
        """Per level, a bool ``Tensor[h * w]``: the point's cell lies inside ``pad_shape``.

        Cell ``(i, j)`` is valid when ``i < ceil(pad_h / stride_h)`` and
        ``j < ceil(pad_w / stride_w)``; the other cells cover another image's batch padding.
        """
        self._check_levels(featmap_sizes, "valid_flags")
        h, w = pad_shape[:2]
        flags = []
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[i]
            valid_h = min(int(np.ceil(h / stride_h)), int(feat_h))
            valid_w = min(int(np.ceil(w / stride_w)), int(feat_w))
            flags.append(
                self.single_level_valid_flags((feat_h, feat_w), (valid_h, valid_w), device=device)
            )
        return flags

    def single_level_valid_flags(
        self, featmap_size: Sequence[int], valid_size: Sequence[int], device: Device = "cpu"
    ) -> torch.Tensor:
        """Valid flags ``Tensor[h * w]`` of one level (``valid_size`` = ``(h, w)`` valid cells)."""
        return _valid_grid(featmap_size, valid_size, device, "MlvlPointGenerator")

    def sparse_priors(
        self,
        prior_idxs: torch.Tensor,
        featmap_size: Sequence[int],
        level_idx: int,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> torch.Tensor:
        """The points at flat indices ``prior_idxs`` of one level's ``(h, w)`` grid,
        ``Tensor[N, 2]``."""
        height, width = featmap_size
        x = (prior_idxs % width + self.offset) * self.strides[level_idx][0]
        y = ((prior_idxs // width) % height + self.offset) * self.strides[level_idx][1]
        return torch.stack([x, y], 1).to(dtype).to(device)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(strides={self.strides}, offset={self.offset}, "
            f"num_levels={self.num_levels})"
        )


@TASK_UTILS.register_module()
class PointGenerator:
    """Single-level points with their stride (v2's legacy ``PointGenerator``, RepPoints).

    Points sit at the cells' top-left corners: ``(j * stride, i * stride, stride)``.

    Example:
        >>> PointGenerator().grid_points((1, 2), stride=8, device='cpu').tolist()
        [[0.0, 0.0, 8.0], [8.0, 0.0, 8.0]]
    """

    def _meshgrid(
        self, x: torch.Tensor, y: torch.Tensor, row_major: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _meshgrid(x, y, row_major)

    def grid_points(
        self, featmap_size: Sequence[int], stride: int = 16, device: Device = "cpu"
    ) -> torch.Tensor:
        """``Tensor[h * w, 3]`` of ``(x, y, stride)``, row-major."""
        feat_h, feat_w = featmap_size
        shift_x = torch.arange(0.0, int(feat_w), device=device) * stride
        shift_y = torch.arange(0.0, int(feat_h), device=device) * stride
        shift_xx, shift_yy = _meshgrid(shift_x, shift_y)
        strides = shift_x.new_full((shift_xx.shape[0],), stride)
        return torch.stack([shift_xx, shift_yy, strides], dim=-1).to(device)

    def valid_flags(
        self, featmap_size: Sequence[int], valid_size: Sequence[int], device: Device = "cpu"
    ) -> torch.Tensor:
        """Bool ``Tensor[h * w]``: True in the top-left ``valid_size`` ``(h, w)`` corner."""
        return _valid_grid(featmap_size, valid_size, device, "PointGenerator")
