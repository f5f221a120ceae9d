"""``RoIAlign`` and ``RoIPool`` layers with mmcv 1.x constructor arguments, on torchvision.ops.

MMDetection v2 configs name these in ``roi_layer=dict(type='RoIAlign', output_size=7,
sampling_ratio=0, aligned=True)``. For average pooling torchvision's kernels compute the same
bilinear samples as mmcv's (adaptive ``sampling_ratio=0`` = ``ceil(roi_size / output_size)``
samples per bin, ``aligned=True`` shifts by half a pixel).
"""

from __future__ import annotations

import warnings

import torch
import torchvision
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = ["RoIAlign", "RoIPool", "roi_align", "roi_pool"]


def _check_rois(rois: torch.Tensor, name: str) -> None:
    if rois.ndim != 2 or rois.size(1) != 5:
        raise ValueError(
            f"{name}: rois must be [K, 5] (batch index, x1, y1, x2, y2), "
            f"got shape {tuple(rois.shape)}"
        )


def roi_align(
    input: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    pool_mode: str = "avg",
    aligned: bool = True,
) -> torch.Tensor:
    """Bilinear RoI pooling of ``input`` ``[B, C, H, W]`` over ``rois`` ``[K, 5]``.

    Returns:
        ``Tensor[K, C, out_h, out_w]``.

    Example:
        >>> feat = torch.arange(16.).view(1, 1, 4, 4)
        >>> roi_align(feat, torch.tensor([[0., 0., 0., 4., 4.]]), 2).view(-1).tolist()
        [2.5, 4.5, 10.5, 12.5]
    """
    if pool_mode != "avg":
        raise NotImplementedError(
            f"roi_align: pool_mode={pool_mode!r} is not supported (torchvision implements 'avg')"
        )
    _check_rois(rois, "roi_align")
    return torchvision.ops.roi_align(
        input, rois.to(input.dtype), _pair(output_size), spatial_scale, sampling_ratio, aligned
    )


def roi_pool(
    input: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> torch.Tensor:
    """Max RoI pooling (Fast R-CNN) of ``input`` ``[B, C, H, W]`` over ``rois`` ``[K, 5]``.

    Example:
        >>> feat = torch.arange(16.).view(1, 1, 4, 4)
        >>> roi_pool(feat, torch.tensor([[0., 0., 0., 3., 3.]]), 2).view(-1).tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    _check_rois(rois, "roi_pool")
    return torchvision.ops.roi_pool(input, rois.to(input.dtype), _pair(output_size), spatial_scale)


class RoIAlign(nn.Module):
    """mmcv's ``RoIAlign`` layer.

    Args:
        output_size: ``h`` and ``w`` of each pooled map (an int means square).
        spatial_scale: Multiplies the RoI coordinates (``1 / feature stride``).
        sampling_ratio: Samples per bin side; 0 means ``ceil(roi_size / output_size)``.
        pool_mode: Only ``'avg'``.
        aligned: Shift the RoI by half a pixel so that pixel centres line up (v2 default).
        use_torchvision: Accepted for mmcv compatibility; both paths use torchvision here.
        out_size: Deprecated name of ``output_size``.
        sample_num: Deprecated name of ``sampling_ratio``.

    Example:
        >>> layer = RoIAlign(output_size=7, spatial_scale=0.25, sampling_ratio=0)
        >>> layer(torch.rand(2, 8, 20, 20), torch.tensor([[1., 4., 4., 40., 30.]])).shape
        torch.Size([1, 8, 7, 7])
    """

    def __init__(
        self,
        output_size: int | tuple[int, int] | None = None,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        pool_mode: str = "avg",
        aligned: bool = True,
        use_torchvision: bool = False,
        *,
        out_size: int | tuple[int, int] | None = None,
        sample_num: int | None = None,
    ) -> None:
        super().__init__()
        if out_size is not None:
            warnings.warn(
                "RoIAlign: 'out_size' is deprecated, use 'output_size'",
                DeprecationWarning,
                stacklevel=2,
            )
            output_size = out_size if output_size is None else output_size
        if sample_num is not None:
            warnings.warn(
                "RoIAlign: 'sample_num' is deprecated, use 'sampling_ratio'",
                DeprecationWarning,
                stacklevel=2,
            )
            sampling_ratio = sample_num
        if output_size is None:
            raise ValueError("RoIAlign: output_size is required")
        if pool_mode != "avg":
            raise NotImplementedError(f"RoIAlign: pool_mode={pool_mode!r} is not supported")
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pool_mode = pool_mode
        self.aligned = aligned
        self.use_torchvision = use_torchvision

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Pool ``input`` ``[B, C, H, W]`` over ``rois`` ``[K, 5]`` → ``[K, C, h, w]``."""
        return roi_align(
            input,
            rois,
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            self.pool_mode,
            self.aligned,
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, pool_mode={self.pool_mode}, "
            f"aligned={self.aligned}"
        )


class RoIPool(nn.Module):
    """mmcv's ``RoIPool`` layer (max pooling over quantised bins).

    Example:
        >>> RoIPool(output_size=7, spatial_scale=0.25)(
        ...     torch.rand(1, 8, 20, 20), torch.tensor([[0., 4., 4., 40., 30.]])).shape
        torch.Size([1, 8, 7, 7])
    """

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Pool ``input`` ``[B, C, H, W]`` over ``rois`` ``[K, 5]`` → ``[K, C, h, w]``."""
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
