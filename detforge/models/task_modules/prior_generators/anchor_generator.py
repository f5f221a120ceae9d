"""``AnchorGenerator``: MMDetection v2's standard anchor generator, with identical arithmetic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.modules.utils import _pair

from detforge.errors import InvalidArgumentError
from detforge.registry import TASK_UTILS

__all__ = ["AnchorGenerator"]

Device = str | torch.device


def _meshgrid(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened row-major grids: ``xx`` cycles fastest (``x`` repeated ``len(y)`` times)."""
    xx = x.repeat(y.shape[0])
    yy = y.view(-1, 1).repeat(1, x.shape[0]).view(-1)
    return xx, yy


@TASK_UTILS.register_module()
class AnchorGenerator:
    """Anchors for anchor-based detectors, level by level (``mmdet.core.anchor.AnchorGenerator``).

    Every feature cell of level ``l`` carries ``len(ratios) * len(scales)`` base anchors of
    size ``base_sizes[l] * scale`` with aspect ratio ``h / w = ratio``, centred at
    ``center_offset * base_size`` (0 = the cell's top-left corner, v2's default) or at
    ``centers[l]``; cell ``(i, j)`` shifts them by ``(j * stride_w, i * stride_h)``. Anchors
    are ordered cell by cell (row-major) and, inside a cell, ratio by ratio with scales
    varying fastest (``scale_major=True``).

    Args:
        strides: Per level ``s`` or ``(s_w, s_h)``.
        ratios: Height / width ratios.
        scales: Anchor scales; exclusive with ``octave_base_scale`` + ``scales_per_octave``.
        base_sizes: Per-level base sizes; default the smaller stride of each level.
        scale_major: Order base anchors ratio-major with scales varying fastest (True) or
            scale-major with ratios varying fastest (False).
        octave_base_scale: With ``scales_per_octave`` ``n``: scales
            ``octave_base_scale * 2 ** (i / n)`` for ``i < n`` (RetinaNet).
        scales_per_octave: See ``octave_base_scale``.
        centers: Per-level ``(x, y)`` centre of the base anchors; exclusive with a non-zero
            ``center_offset``.
        center_offset: Centre of the base anchors as a fraction of the base size, in [0, 1].

    Example:
        >>> gen = AnchorGenerator(strides=[16], ratios=[1.], scales=[1.], base_sizes=[9])
        >>> gen.grid_priors([(2, 2)], device='cpu')[0]
        tensor([[-4.5000, -4.5000,  4.5000,  4.5000],
                [11.5000, -4.5000, 20.5000,  4.5000],
                [-4.5000, 11.5000,  4.5000, 20.5000],
                [11.5000, 11.5000, 20.5000, 20.5000]])
    """

    def __init__(
        self,
        strides: Sequence[int | Sequence[int]],
        ratios: Sequence[float],
        scales: Sequence[float] | None = None,
        base_sizes: Sequence[float] | None = None,
        scale_major: bool = True,
        octave_base_scale: float | None = None,
        scales_per_octave: int | None = None,
        centers: Sequence[Sequence[float]] | None = None,
        center_offset: float = 0.0,
    ) -> None:
        if center_offset != 0 and centers is not None:
            raise InvalidArgumentError(
                f"AnchorGenerator: centers cannot be set when center_offset != 0 "
                f"(center_offset={center_offset}, centers={centers})"
            )
        if not 0 <= center_offset <= 1:
            raise InvalidArgumentError(
                f"AnchorGenerator: center_offset must be in [0, 1], got {center_offset}"
            )
        if centers is not None and len(centers) != len(strides):
            raise InvalidArgumentError(
                f"AnchorGenerator: {len(centers)} centers for {len(strides)} strides "
                f"(centers={centers}, strides={strides})"
            )
        self.strides: list[tuple[int, int]] = [_pair(stride) for stride in strides]
        self.base_sizes: list[float] = (
            [min(stride) for stride in self.strides] if base_sizes is None else list(base_sizes)
        )
        if len(self.base_sizes) != len(self.strides):
            raise InvalidArgumentError(
                f"AnchorGenerator: {len(self.base_sizes)} base_sizes for {len(self.strides)} "
                f"strides (base_sizes={self.base_sizes}, strides={self.strides})"
            )
        octave = octave_base_scale is not None and scales_per_octave is not None
        if octave == (scales is not None):
            raise InvalidArgumentError(
                "AnchorGenerator: set either scales or octave_base_scale with "
                f"scales_per_octave, not both or neither (scales={scales}, "
                f"octave_base_scale={octave_base_scale}, scales_per_octave={scales_per_octave})"
            )
        if scales is not None:
            self.scales = torch.tensor(scales, dtype=torch.float32)
        else:
            assert octave_base_scale is not None and scales_per_octave is not None
            octave_scales = np.array(
                [2 ** (i / scales_per_octave) for i in range(scales_per_octave)]
            )
            self.scales = torch.tensor(octave_scales * octave_base_scale, dtype=torch.float32)
        self.octave_base_scale = octave_base_scale
        self.scales_per_octave = scales_per_octave
        self.ratios = torch.tensor(ratios, dtype=torch.float32)
        self.scale_major = scale_major
        self.centers = centers
        self.center_offset = center_offset
        self.base_anchors = self.gen_base_anchors()

    @property
    def num_base_priors(self) -> list[int]:
        """Number of anchors per feature cell, per level."""
        return [anchors.size(0) for anchors in self.base_anchors]

    @property
    def num_base_anchors(self) -> list[int]:
        """v2's older name of :attr:`num_base_priors`."""
        return self.num_base_priors

    @property
    def num_levels(self) -> int:
        """Number of feature levels."""
        return len(self.strides)

    def gen_base_anchors(self) -> list[torch.Tensor]:
        """The anchors of one feature cell at the origin, per level: ``Tensor[A, 4]``."""
        return [
            self.gen_single_level_base_anchors(
                base_size,
                scales=self.scales,
                ratios=self.ratios,
                center=None if self.centers is None else self.centers[i],
            )
            for i, base_size in enumerate(self.base_sizes)
        ]

    def gen_single_level_base_anchors(
        self,
        base_size: float,
        scales: torch.Tensor,
        ratios: torch.Tensor,
        center: Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Base anchors ``Tensor[len(ratios) * len(scales), 4]`` of one level."""
        w = h = base_size
        if center is None:
            x_center = self.center_offset * w
            y_center = self.center_offset * h
        else:
            x_center, y_center = center
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * scales[None, :]).view(-1)
            hs = (h * h_ratios[:, None] * scales[None, :]).view(-1)
        else:
            ws = (w * scales[:, None] * w_ratios[None, :]).view(-1)
            hs = (h * scales[:, None] * h_ratios[None, :]).view(-1)
        return torch.stack(
            [x_center - 0.5 * ws, y_center - 0.5 * hs, x_center + 0.5 * ws, y_center + 0.5 * hs],
            dim=-1,
        )

    def _check_levels(self, featmap_sizes: Sequence[Sequence[int]], name: str) -> None:
        if len(featmap_sizes) != self.num_levels:
            raise InvalidArgumentError(
                f"AnchorGenerator.{name}: got {len(featmap_sizes)} feature map sizes for "
                f"{self.num_levels} levels (strides={self.strides})"
            )

    def grid_priors(
        self,
        featmap_sizes: Sequence[Sequence[int]],
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> list[torch.Tensor]:
        """Anchors of every level: ``Tensor[h_l * w_l * A_l, 4]`` each.

        Args:
            featmap_sizes: ``(h, w)`` of each level's feature map.
            dtype: Anchor dtype.
            device: Anchor device.
        """
        self._check_levels(featmap_sizes, "grid_priors")
        return [
            self.single_level_grid_priors(size, level_idx=i, dtype=dtype, device=device)
            for i, size in enumerate(featmap_sizes)
        ]

    def grid_anchors(
        self, featmap_sizes: Sequence[Sequence[int]], device: Device = "cpu"
    ) -> list[torch.Tensor]:
        """v2's older name of :meth:`grid_priors` (float32 anchors)."""
        return self.grid_priors(featmap_sizes, device=device)

    def single_level_grid_priors(
        self,
        featmap_size: Sequence[int],
        level_idx: int,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> torch.Tensor:
        """Anchors of one level, cell by cell (row-major), ``Tensor[h * w * A, 4]``."""
        base_anchors = self.base_anchors[level_idx].to(device).to(dtype)
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        shift_x = torch.arange(0, feat_w, device=device).to(dtype) * stride_w
        shift_y = torch.arange(0, feat_h, device=device).to(dtype) * stride_h
        shift_xx, shift_yy = _meshgrid(shift_x, shift_y)
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1)
        return (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)

    def single_level_grid_anchors(
        self,
        base_anchors: torch.Tensor,
        featmap_size: Sequence[int],
        stride: Sequence[int] = (16, 16),
        device: Device = "cpu",
    ) -> torch.Tensor:
        """Shift the given base anchors ``Tensor[A, 4]`` over a ``featmap_size`` grid (v2 API)."""
        feat_h, feat_w = featmap_size
        shift_x = torch.arange(0, feat_w, device=device) * stride[0]
        shift_y = torch.arange(0, feat_h, device=device) * stride[1]
        shift_xx, shift_yy = _meshgrid(shift_x, shift_y)
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1).type_as(base_anchors)
        return (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)

    def sparse_priors(
        self,
        prior_idxs: torch.Tensor,
        featmap_size: Sequence[int],
        level_idx: int,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> torch.Tensor:
        """The anchors at flat indices ``prior_idxs`` of one level's grid, ``Tensor[N, 4]``."""
        height, width = featmap_size
        num_base = self.num_base_priors[level_idx]
        base_anchor_id = prior_idxs % num_base
        x = (prior_idxs // num_base) % width * self.strides[level_idx][0]
        y = (prior_idxs // width // num_base) % height * self.strides[level_idx][1]
        shifts = torch.stack([x, y, x, y], 1).to(dtype).to(device)
        return shifts + self.base_anchors[level_idx][base_anchor_id, :].to(device)

    def valid_flags(
        self,
        featmap_sizes: Sequence[Sequence[int]],
        pad_shape: Sequence[int],
        device: Device = "cpu",
    ) -> list[torch.Tensor]:
        """Per level, a bool ``Tensor[h * w * A]``: the anchor's cell lies inside ``pad_shape``.

        A cell ``(i, j)`` is valid when ``i < ceil(pad_h / stride_h)`` and
        ``j < ceil(pad_w / stride_w)``; cells beyond cover the batch padding of other images.
        """
        self._check_levels(featmap_sizes, "valid_flags")
        flags = []
        h, w = pad_shape[:2]
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[i]
            valid_h = min(int(np.ceil(h / stride_h)), feat_h)
            valid_w = min(int(np.ceil(w / stride_w)), feat_w)
            flags.append(
                self.single_level_valid_flags(
                    (feat_h, feat_w), (valid_h, valid_w), self.num_base_priors[i], device=device
                )
            )
        return flags

    def single_level_valid_flags(
        self,
        featmap_size: Sequence[int],
        valid_size: Sequence[int],
        num_base_anchors: int,
        device: Device = "cpu",
    ) -> torch.Tensor:
        """Valid flags ``Tensor[h * w * num_base_anchors]`` of one level."""
        feat_h, feat_w = featmap_size
        valid_h, valid_w = valid_size
        if valid_h > feat_h or valid_w > feat_w:
            raise InvalidArgumentError(
                f"AnchorGenerator: valid size {tuple(valid_size)} exceeds the feature map "
                f"size {tuple(featmap_size)}"
            )
        valid_x = torch.zeros(feat_w, dtype=torch.bool, device=device)
        valid_y = torch.zeros(feat_h, dtype=torch.bool, device=device)
        valid_x[:valid_w] = True
        valid_y[:valid_h] = True
        valid_xx, valid_yy = _meshgrid(valid_x, valid_y)
        valid = valid_xx & valid_yy
        return valid[:, None].expand(valid.size(0), num_base_anchors).contiguous().view(-1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(strides={self.strides}, ratios={self.ratios.tolist()}, "
            f"scales={self.scales.tolist()}, base_sizes={self.base_sizes}, "
            f"scale_major={self.scale_major}, octave_base_scale={self.octave_base_scale}, "
            f"scales_per_octave={self.scales_per_octave}, num_levels={self.num_levels}, "
            f"centers={self.centers}, center_offset={self.center_offset})"
        )
