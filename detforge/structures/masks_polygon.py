"""Instance masks as polygons (:class:`PolygonMasks`) and polygon rasterisation.

Import from :mod:`detforge.structures.masks`; this module only holds the implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch

from detforge.structures.masks_bitmap import (
    BaseInstanceMasks,
    BitmapMasks,
    check_flip_direction,
    clip_crop_box,
    rle_decode,
)
from detforge.utils.image import rescale_size

__all__ = ["PolygonMasks", "polygon_to_bitmap"]

Polygons = list[np.ndarray]


def polygon_to_bitmap(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise the polygons of one instance (their union) with pycocotools.

    Polygons with fewer than three points cover no area and are skipped (pycocotools would
    read a 4-number polygon as a box).

    Args:
        polygons: Flat ``[x0, y0, x1, y1, ...]`` arrays.
        height: Canvas height.
        width: Canvas width.

    Returns:
        ``ndarray[height, width]`` bool.

    Example:
        >>> polygon_to_bitmap([np.array([0., 0., 4., 0., 4., 2., 0., 2.])], 4, 6).sum()
        np.int64(8)
    """
    valid = [np.asarray(p, dtype=np.float64) for p in polygons if len(p) >= 6]
    if not valid:
        return np.zeros((height, width), dtype=bool)
    rles = mask_utils.frPyObjects([p.tolist() for p in valid], height, width)
    return rle_decode(mask_utils.merge(rles)).astype(bool)


def _as_polygon(p: Any, where: str) -> np.ndarray:
    arr = np.asarray(p)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim != 1 or len(arr) % 2:
        raise ValueError(
            f"PolygonMasks: {where} must be a flat [x0, y0, x1, y1, ...] array, got shape "
            f"{arr.shape}"
        )
    return arr


def _shoelace(p: np.ndarray) -> float:
    x, y = p[0::2], p[1::2]
    return float(0.5 * np.abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _clip_half_plane(points: np.ndarray, axis: int, bound: float, keep_above: bool) -> np.ndarray:
    """One Sutherland–Hodgman step: keep the part with ``coord >= bound`` (or ``<=``)."""
    if len(points) == 0:
        return points
    coord = points[:, axis]
    inside = coord >= bound if keep_above else coord <= bound
    out: list[np.ndarray] = []
    n = len(points)
    for i in range(n):
        j = (i + 1) % n
        if inside[i]:
            out.append(points[i])
        if inside[i] != inside[j]:
            t = (bound - coord[i]) / (coord[j] - coord[i])
            out.append(points[i] + t * (points[j] - points[i]))
    return np.asarray(out, dtype=points.dtype).reshape(-1, 2)


def _clip_to_box(p: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """Clip a polygon to a rectangle; returns flat coordinates (may be empty)."""
    pts = p.reshape(-1, 2)
    pts = _clip_half_plane(pts, 0, x1, keep_above=True)
    pts = _clip_half_plane(pts, 0, x2, keep_above=False)
    pts = _clip_half_plane(pts, 1, y1, keep_above=True)
    pts = _clip_half_plane(pts, 1, y2, keep_above=False)
    return pts.reshape(-1)


class PolygonMasks(BaseInstanceMasks):
    """Instance masks as polygons: a list over instances of lists of flat coordinate arrays.

    Args:
        masks: ``masks[i]`` is the list of polygons (``[x0, y0, x1, y1, ...]``) of instance
            ``i``; several polygons mean a multi-part object. Integer arrays become float64.
        height: Canvas height.
        width: Canvas width.

    Example:
        >>> pm = PolygonMasks([[np.array([0., 0., 4., 0., 4., 2.])]], height=4, width=6)
        >>> pm.areas.tolist(), pm.flip().masks[0][0].tolist()
        ([4.0], [6.0, 0.0, 2.0, 0.0, 2.0, 2.0])
    """

    def __init__(self, masks: Sequence[Sequence[Any]], height: int, width: int) -> None:
        if not isinstance(masks, list | tuple):
            raise TypeError(
                f"PolygonMasks expects a list over instances, got {type(masks).__name__}"
            )
        polys: list[Polygons] = []
        for i, obj in enumerate(masks):
            if isinstance(obj, np.ndarray) or not isinstance(obj, list | tuple):
                raise TypeError(
                    f"PolygonMasks: masks[{i}] must be a list of polygons, got {type(obj).__name__}"
                )
            polys.append([_as_polygon(p, f"masks[{i}][{k}]") for k, p in enumerate(obj)])
        self.masks: list[Polygons] = polys
        self.height = int(height)
        self.width = int(width)

    @classmethod
    def random(
        cls,
        num_masks: int = 3,
        height: int = 32,
        width: int = 32,
        n_verts: int = 5,
        dtype: type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> PolygonMasks:
        """Random star-shaped polygons inside the canvas, one per instance, for tests.

        Example:
            >>> pm = PolygonMasks.random(4, 20, 30, rng=0)
            >>> len(pm), bool((pm.get_bboxes()[:, 2] <= 30).all())
            (4, True)
        """
        gen = np.random.default_rng(rng)
        masks: list[list[np.ndarray]] = []
        for _ in range(num_masks):
            cx, cy = gen.uniform(0.3, 0.7) * width, gen.uniform(0.3, 0.7) * height
            radius = gen.uniform(0.2, 1.0, n_verts) * 0.3 * min(width, height)
            angles = np.sort(gen.uniform(0, 2 * np.pi, n_verts))
            xy = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
            masks.append([xy.reshape(-1).astype(dtype)])
        return cls(masks, height, width)

    def __len__(self) -> int:
        return len(self.masks)

    def __iter__(self) -> Iterator[Polygons]:
        return iter(self.masks)

    def __getitem__(self, index: Any) -> PolygonMasks:
        """Select instances by int, slice, list, index array or boolean array."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if isinstance(index, np.ndarray):
            if index.dtype == bool:
                index = np.flatnonzero(index)
            index = index.tolist()
        if isinstance(index, list):
            picked = [self.masks[i] for i in index]
        elif isinstance(index, slice):
            picked = self.masks[index]
        else:
            try:
                picked = [self.masks[int(index)]]
            except (TypeError, ValueError, IndexError) as exc:
                raise type(exc)(f"PolygonMasks: cannot index with {index!r}: {exc}") from exc
        return PolygonMasks(picked, self.height, self.width)

    def _map(self, fn: Callable[[np.ndarray], np.ndarray], height: int, width: int) -> PolygonMasks:
        return PolygonMasks([[fn(p) for p in obj] for obj in self.masks], height, width)

    def rescale(
        self, scale: float | tuple[int, int], interpolation: str | None = None
    ) -> PolygonMasks:
        """Keep-ratio rescale (same canvas size as :meth:`BitmapMasks.rescale`)."""
        new_w, new_h = rescale_size((self.width, self.height), scale)
        return self.resize((new_h, new_w))

    def resize(self, out_shape: tuple[int, int], interpolation: str | None = None) -> PolygonMasks:
        """Scale coordinates to a canvas of ``out_shape = (h, w)``."""
        h, w = int(out_shape[0]), int(out_shape[1])
        sx, sy = w / self.width, h / self.height

        def scale_poly(p: np.ndarray) -> np.ndarray:
            q = p.copy()
            q[0::2] = q[0::2] * sx
            q[1::2] = q[1::2] * sy
            return q

        return self._map(scale_poly, h, w)

    def flip(self, flip_direction: str = "horizontal") -> PolygonMasks:
        """Mirror: ``x' = W - x`` and/or ``y' = H - y``."""
        check_flip_direction(flip_direction)

        def flip_poly(p: np.ndarray) -> np.ndarray:
            q = p.copy()
            if flip_direction in ("horizontal", "diagonal"):
                q[0::2] = self.width - q[0::2]
            if flip_direction in ("vertical", "diagonal"):
                q[1::2] = self.height - q[1::2]
            return q

        return self._map(flip_poly, self.height, self.width)

    def pad(self, out_shape: tuple[int, int], pad_val: int = 0) -> PolygonMasks:
        """Bottom/right padding only changes the canvas size."""
        return PolygonMasks(self.masks, int(out_shape[0]), int(out_shape[1]))

    def crop(self, bbox: np.ndarray) -> PolygonMasks:
        """Clip every polygon to ``bbox`` and shift it to the crop's frame.

        An instance with nothing left keeps one degenerate polygon (six zeros), so instances
        stay aligned with their boxes as in MMDetection.
        """
        x1, y1, x2, y2, w, h = clip_crop_box(bbox, self.height, self.width)
        cropped: list[Polygons] = []
        for obj in self.masks:
            parts = []
            for p in obj:
                q = _clip_to_box(p, x1, y1, x2, y2)
                if len(q) < 6 or _shoelace(q) == 0:
                    continue
                q[0::2] -= x1
                q[1::2] -= y1
                parts.append(q)
            cropped.append(parts or [np.zeros(6, dtype=np.float64)])
        return PolygonMasks(cropped, h, w)

    def crop_and_resize(
        self,
        bboxes: np.ndarray | torch.Tensor,
        out_shape: tuple[int, int],
        inds: np.ndarray | torch.Tensor,
        device: str | torch.device = "cpu",
        interpolation: str = "bilinear",
        binarize: bool = True,
    ) -> PolygonMasks:
        """Map polygon ``inds[i]`` into box ``bboxes[i]`` scaled to ``out_shape = (h, w)``.

        Coordinates outside the box are left for the rasteriser to clip, as in mmdet.
        """
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return PolygonMasks([], out_h, out_w)
        boxes = bboxes.detach().cpu().numpy() if isinstance(bboxes, torch.Tensor) else bboxes
        index = inds.detach().cpu().numpy() if isinstance(inds, torch.Tensor) else inds
        out: list[Polygons] = []
        for box, i in zip(np.asarray(boxes), np.asarray(index), strict=True):
            bx1, by1, bx2, by2 = (float(v) for v in box[:4])
            sx = out_w / max(max(bx2 - bx1, 1.0), 0.1)
            sy = out_h / max(max(by2 - by1, 1.0), 0.1)
            parts = []
            for p in self.masks[int(i)]:
                q = p.copy()
                q[0::2] = (q[0::2] - bx1) * sx
                q[1::2] = (q[1::2] - by1) * sy
                parts.append(q)
            out.append(parts)
        return PolygonMasks(out, out_h, out_w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> PolygonMasks:
        """Shift by ``(left, top)`` onto a larger canvas (mmdet v2 left this unimplemented)."""

        def shift(p: np.ndarray) -> np.ndarray:
            q = p.copy()
            q[0::2] += left
            q[1::2] += top
            return q

        return self._map(shift, expanded_h, expanded_w)

    def translate(
        self,
        out_shape: tuple[int, int],
        offset: float,
        direction: str = "horizontal",
        fill_val: float | None = None,
        interpolation: str | None = None,
    ) -> PolygonMasks:
        """Shift by ``offset`` and clip the coordinates to the ``out_shape`` canvas."""
        if fill_val not in (None, 0):
            raise ValueError(f"PolygonMasks.translate: fill_val must be None or 0, got {fill_val}")
        if direction not in ("horizontal", "vertical"):
            raise ValueError(f"translate direction must be horizontal/vertical, got {direction!r}")
        h, w = int(out_shape[0]), int(out_shape[1])
        axis, limit = (0, w) if direction == "horizontal" else (1, h)

        def shift(p: np.ndarray) -> np.ndarray:
            q = p.copy()
            q[axis::2] = np.clip(q[axis::2] + offset, 0, limit)
            return q

        return self._map(shift, h, w)

    def _affine(self, matrix: np.ndarray, out_shape: tuple[int, int]) -> PolygonMasks:
        h, w = int(out_shape[0]), int(out_shape[1])

        def apply(p: np.ndarray) -> np.ndarray:
            xy = p.reshape(-1, 2)
            new = xy @ matrix[:, :2].T + matrix[:, 2]
            new[:, 0] = np.clip(new[:, 0], 0, w)
            new[:, 1] = np.clip(new[:, 1], 0, h)
            return new.reshape(-1).astype(p.dtype)

        return self._map(apply, h, w)

    def shear(
        self,
        out_shape: tuple[int, int],
        magnitude: float,
        direction: str = "horizontal",
        border_value: float = 0,
        interpolation: str = "bilinear",
    ) -> PolygonMasks:
        """Shear the coordinates (as :func:`~detforge.utils.image.imshear`), then clip."""
        if direction == "horizontal":
            matrix = np.array([[1, magnitude, 0], [0, 1, 0]], dtype=np.float32)
        elif direction == "vertical":
            matrix = np.array([[1, 0, 0], [magnitude, 1, 0]], dtype=np.float32)
        else:
            raise ValueError(f"shear direction must be horizontal/vertical, got {direction!r}")
        return self._affine(matrix, out_shape)

    def rotate(
        self,
        out_shape: tuple[int, int],
        angle: float,
        center: tuple[float, float] | None = None,
        scale: float = 1.0,
        fill_val: float = 0,
    ) -> PolygonMasks:
        """Rotate clockwise by ``angle`` degrees about ``center``, then clip to the canvas."""
        if center is None:
            center = ((self.width - 1) * 0.5, (self.height - 1) * 0.5)
        matrix = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), -angle, scale)
        return self._affine(matrix, out_shape)

    def to_bitmap(self) -> BitmapMasks:
        """Rasterise into :class:`BitmapMasks` (uint8)."""
        return BitmapMasks(self.to_ndarray().astype(np.uint8), self.height, self.width)

    @property
    def areas(self) -> np.ndarray:
        """``ndarray[N]`` polygon areas by the shoelace formula, summed over parts.

        Holes and overlaps are not accounted for, as in MMDetection.
        """
        return np.asarray([sum(_shoelace(p) for p in obj) for obj in self.masks], dtype=np.float64)

    def get_bboxes(self) -> np.ndarray:
        """``ndarray[N, 4]`` float32 extent of each instance's vertices."""
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        for i, obj in enumerate(self.masks):
            pts = [p.reshape(-1, 2) for p in obj if len(p)]
            if pts:
                xy = np.concatenate(pts).astype(np.float32)
                boxes[i, :2] = np.minimum(xy.min(0), [self.width * 2, self.height * 2])
                boxes[i, 2:] = np.maximum(xy.max(0), 0)
        return boxes

    def to_ndarray(self) -> np.ndarray:
        """Rasterised ``ndarray[N, H, W]`` bool."""
        if len(self) == 0:
            return np.empty((0, self.height, self.width), dtype=np.uint8)
        return np.stack([polygon_to_bitmap(obj, self.height, self.width) for obj in self.masks])

    def to_tensor(self, dtype: torch.dtype, device: str | torch.device = "cpu") -> torch.Tensor:
        """Rasterised masks as ``Tensor[N, H, W]``."""
        return torch.as_tensor(self.to_ndarray(), dtype=dtype, device=device)
