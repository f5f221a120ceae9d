"""``FCNMaskHead`` (Mask R-CNN's mask branch), its training targets and mask pasting (v2).

The head maps RoI features ``[K, C, 14, 14]`` through ``num_convs`` 3x3 convs, a 2x upsampling
and a 1x1 predictor to per-class mask logits ``[K, num_classes, 28, 28]``. At test time
:meth:`FCNMaskHead.get_seg_masks` pastes each detection's mask into the image with
:func:`paste_masks`, which follows MMDetection v2 exactly: bilinear ``grid_sample`` of the
``28 x 28`` probabilities over the pixel centres of the box (``align_corners=False``, zero
padding), then ``>= mask_thr_binary``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from detforge.errors import InvalidArgumentError
from detforge.models.layers import CARAFEPack, ConvModule, build_conv_layer
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.masks import BitmapMasks, PolygonMasks

__all__ = [
    "BYTES_PER_FLOAT",
    "GPU_MEM_LIMIT",
    "FCNMaskHead",
    "as_instance_masks",
    "mask_target",
    "merge_aug_masks",
    "paste_masks",
]


BYTES_PER_FLOAT = 4
#: Pasting on an accelerator works on chunks of instances whose float32 canvases stay below
#: this many bytes (1 GiB, as in MMDetection v2).
GPU_MEM_LIMIT = 1024**3

_UPSAMPLE_METHODS = (None, "deconv", "nearest", "bilinear", "carafe")


def as_instance_masks(gt_masks: Any, where: str) -> BitmapMasks | PolygonMasks:
    """``gt_masks`` as ``BitmapMasks``/``PolygonMasks`` (an ``[N, H, W]`` array is wrapped).

    Raises:
        TypeError: anything else; the message starts with ``where``.
    """
    if isinstance(gt_masks, BitmapMasks | PolygonMasks):
        return gt_masks
    if isinstance(gt_masks, np.ndarray | torch.Tensor) and gt_masks.ndim == 3:
        arr = gt_masks.detach().cpu().numpy() if isinstance(gt_masks, torch.Tensor) else gt_masks
        return BitmapMasks(arr, arr.shape[1], arr.shape[2])
    raise TypeError(
        f"{where}: gt_masks must be BitmapMasks, PolygonMasks or an [N, H, W] array, "
        f"got {type(gt_masks).__name__}"
    )


def _mask_target_single(
    pos_proposals: torch.Tensor, pos_assigned_gt_inds: torch.Tensor, gt_masks: Any, cfg: Cfg
) -> torch.Tensor:
    device = pos_proposals.device
    mask_size = _pair(cfg["mask_size"])
    if pos_proposals.size(0) == 0:
        return pos_proposals.new_zeros((0, *mask_size))
    masks = as_instance_masks(gt_masks, "mask_target")
    boxes = pos_proposals.detach().cpu().numpy().copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, masks.width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, masks.height)
    targets = masks.crop_and_resize(
        boxes,
        mask_size,
        inds=pos_assigned_gt_inds.detach().cpu().numpy(),
        device=device,
        binarize=not cfg.get("soft_mask_target", False),
    ).to_ndarray()
    return torch.from_numpy(np.asarray(targets)).float().to(device)


def mask_target(
    pos_proposals_list: Sequence[torch.Tensor],
    pos_assigned_gt_inds_list: Sequence[torch.Tensor],
    gt_masks_list: Sequence[Any],
    cfg: Cfg,
) -> torch.Tensor:
    """Mask targets of the positive proposals of every image, concatenated.

    Each positive proposal (clipped to the mask canvas) crops the mask of its ground truth,
    which is resampled to ``cfg['mask_size']`` with RoIAlign (``aligned=True``) and binarised
    at 0.5 unless ``cfg['soft_mask_target']``.

    Args:
        pos_proposals_list: Per image ``Tensor[P_i, 4]``.
        pos_assigned_gt_inds_list: Per image ``Tensor[P_i]`` 0-based ground-truth indices.
        gt_masks_list: Per image ``BitmapMasks`` or ``PolygonMasks``.
        cfg: The R-CNN train config (``mask_size``, optional ``soft_mask_target``).

    Returns:
        ``Tensor[sum P_i, mask_h, mask_w]`` float.

    Example:
        >>> masks = BitmapMasks(np.ones((1, 8, 8), np.uint8), 8, 8)
        >>> mask_target([torch.tensor([[0., 0., 4., 4.]])], [torch.tensor([0])], [masks],
        ...             dict(mask_size=2)).tolist()
        [[[1.0, 1.0], [1.0, 1.0]]]
    """
    targets = [
        _mask_target_single(p, i, m, cfg)
        for p, i, m in zip(
            pos_proposals_list, pos_assigned_gt_inds_list, gt_masks_list, strict=True
        )
    ]
    return torch.cat(targets) if targets else torch.zeros((0, *_pair(cfg["mask_size"])))


def _paste_chunk(
    masks: torch.Tensor, boxes: torch.Tensor, img_h: int, img_w: int, skip_empty: bool
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Sample ``masks [n, 1, h, w]`` at the image pixels covered by ``boxes [n, 4]``.

    With ``skip_empty`` only the region around the union of the boxes is sampled and its
    slices are returned; otherwise the whole ``img_h x img_w`` canvas.
    """
    if skip_empty:
        x0_int, y0_int = (
            torch.clamp(boxes.min(dim=0).values.floor()[:2] - 1, min=0).to(torch.int32).tolist()
        )
        x1_int = int(torch.clamp(boxes[:, 2].max().ceil() + 1, max=img_w).to(torch.int32))
        y1_int = int(torch.clamp(boxes[:, 3].max().ceil() + 1, max=img_h).to(torch.int32))
    else:
        x0_int, y0_int, x1_int, y1_int = 0, 0, img_w, img_h
    x0, y0, x1, y1 = torch.split(boxes, 1, dim=1)
    n = masks.shape[0]
    ys = torch.arange(y0_int, y1_int, device=masks.device).to(torch.float32) + 0.5
    xs = torch.arange(x0_int, x1_int, device=masks.device).to(torch.float32) + 0.5
    # normalised grid coordinates in [-1, 1] across each box (a zero-size box gives inf -> 0)
    ys = (ys - y0) / (y1 - y0) * 2 - 1
    xs = (xs - x0) / (x1 - x0) * 2 - 1
    ys = torch.where(torch.isinf(ys), torch.zeros_like(ys), ys)
    xs = torch.where(torch.isinf(xs), torch.zeros_like(xs), xs)
    grid = torch.stack(
        [
            xs[:, None, :].expand(n, ys.size(1), xs.size(1)),
            ys[:, :, None].expand(n, ys.size(1), xs.size(1)),
        ],
        dim=3,
    )
    pasted = F.grid_sample(masks.to(torch.float32), grid, align_corners=False)[:, 0]
    if skip_empty:
        return pasted, (slice(y0_int, y1_int), slice(x0_int, x1_int))
    return pasted, ()


def _num_chunks(num: int, img_h: int, img_w: int, on_cpu: bool, mem_limit: int) -> int:
    if num == 0:
        return 0
    if on_cpu:
        return num  # one instance at a time, each on its own small region
    chunks = math.ceil(num * int(img_h) * int(img_w) * BYTES_PER_FLOAT / mem_limit)
    if chunks > num:
        raise MemoryError(
            f"paste_masks: one {img_h}x{img_w} canvas exceeds mem_limit={mem_limit} bytes"
        )
    return max(chunks, 1)


def paste_masks(
    mask_probs: torch.Tensor,
    bboxes: torch.Tensor,
    img_h: int,
    img_w: int,
    threshold: float = 0.5,
    skip_empty: bool | None = None,
    num_chunks: int | None = None,
    mem_limit: int = GPU_MEM_LIMIT,
) -> torch.Tensor:
    """Paste per-box mask probabilities into ``img_h x img_w`` canvases (v2 ``_do_paste_mask``).

    Args:
        mask_probs: ``Tensor[N, 1, h, w]`` (or ``[N, h, w]``) probabilities.
        bboxes: ``Tensor[N, 4]`` boxes in the canvas frame.
        img_h: Canvas height.
        img_w: Canvas width.
        threshold: ``>= 0``: bool masks ``prob >= threshold``; negative: uint8 ``prob * 255``.
        skip_empty: Sample only around the boxes of each chunk (default: on CPU).
        num_chunks: Number of instance chunks (default: one instance per chunk on CPU, else
            as few chunks as keep each float32 chunk canvas under ``mem_limit`` bytes).
        mem_limit: Bytes per chunk for the default chunking off the CPU.

    Returns:
        ``Tensor[N, img_h, img_w]`` bool (or uint8) on ``mask_probs``' device.

    Example:
        >>> probs = torch.ones(1, 1, 28, 28)
        >>> paste_masks(probs, torch.tensor([[2., 1., 6., 3.]]), 5, 8).int()[0].tolist()[1]
        [0, 0, 1, 1, 1, 1, 0, 0]
    """
    if mask_probs.dim() == 3:
        mask_probs = mask_probs[:, None]
    if mask_probs.dim() != 4 or mask_probs.size(1) != 1:
        raise InvalidArgumentError(
            f"paste_masks: mask_probs must be [N, 1, h, w], got {mask_probs.shape}"
        )
    num = mask_probs.size(0)
    if bboxes.shape != (num, 4):
        raise InvalidArgumentError(
            f"paste_masks: bboxes must be [{num}, 4], got {tuple(bboxes.shape)}"
        )
    device = mask_probs.device
    on_cpu = device.type == "cpu"
    skip = on_cpu if skip_empty is None else skip_empty
    chunks = _num_chunks(num, img_h, img_w, on_cpu, mem_limit) if num_chunks is None else num_chunks
    dtype = torch.bool if threshold >= 0 else torch.uint8
    canvas = torch.zeros(num, int(img_h), int(img_w), device=device, dtype=dtype)
    if num == 0:
        return canvas
    bboxes = bboxes.to(device=device, dtype=torch.float32)
    for inds in torch.chunk(torch.arange(num, device=device), chunks):
        pasted, region = _paste_chunk(mask_probs[inds], bboxes[inds], img_h, img_w, skip)
        values = (pasted >= threshold) if threshold >= 0 else (pasted * 255).to(torch.uint8)
        if region:
            canvas[inds, region[0], region[1]] = values
        else:
            canvas[inds] = values
    return canvas


def merge_aug_masks(
    aug_masks: Sequence[np.ndarray],
    img_metas: Sequence[Sequence[ImgMeta]],
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Average the mask probabilities ``[N, C, h, w]`` of several views, flips undone (v2)."""
    recovered = []
    for mask, metas in zip(aug_masks, img_metas, strict=True):
        meta = metas[0]
        if meta.get("flip", False):
            direction = meta.get("flip_direction") or "horizontal"
            if direction not in ("horizontal", "vertical", "diagonal"):
                raise InvalidArgumentError(f"merge_aug_masks: unknown flip_direction {direction!r}")
            if direction in ("horizontal", "diagonal"):
                mask = mask[:, :, :, ::-1]
            if direction in ("vertical", "diagonal"):
                mask = mask[:, :, ::-1, :]
        recovered.append(mask)
    if weights is None:
        return np.mean(recovered, axis=0)
    return np.average(np.array(recovered), axis=0, weights=np.array(weights))


def _scale_vector(scale_factor: Any, like: torch.Tensor) -> torch.Tensor:
    """``scale_factor`` (float, ``[w, h, w, h]`` array/list/tensor) as ``Tensor[4]`` float32."""
    if isinstance(scale_factor, int | float):
        scale_factor = [float(scale_factor)] * 4
    if isinstance(scale_factor, torch.Tensor):
        scale_factor = scale_factor.detach().cpu().numpy()
    vec = torch.as_tensor(np.asarray(scale_factor, dtype=np.float32))
    if vec.numel() == 1:
        vec = vec.reshape(1).repeat(4)
    if vec.numel() != 4:
        raise InvalidArgumentError(
            f"scale_factor must be a float or [w, h, w, h], got {scale_factor!r}"
        )
    return vec.reshape(4).to(like.device)


@MODELS.register_module()
class FCNMaskHead(nn.Module):
    """Fully convolutional mask head of Mask R-CNN (``mmdet`` v2 ``FCNMaskHead``).

    State-dict keys: ``convs.{i}.conv`` (and ``convs.{i}.{norm}``), ``upsample`` (deconv only),
    ``conv_logits``.

    Args:
        num_convs: 3x3 (``conv_kernel_size``) ConvModules before upsampling.
        roi_feat_size: Size of the RoI features (kept for v2 compatibility; not used).
        in_channels: Channels of the RoI features.
        conv_kernel_size: Kernel of the convs.
        conv_out_channels: Channels of the convs and the deconv.
        num_classes: Foreground classes (one mask channel each).
        class_agnostic: Predict one mask per RoI instead of one per class.
        upsample_cfg: ``dict(type='deconv'|'nearest'|'bilinear'|'carafe'|None, scale_factor=2)``;
            ``'carafe'`` takes :class:`CARAFEPack`'s further arguments (``up_kernel``, ...).
        conv_cfg: Conv layer config of the convs.
        norm_cfg: Norm layer config of the convs.
        predictor_cfg: Conv layer config of ``conv_logits`` (default ``dict(type='Conv')``).
        loss_mask: Loss config (default ``CrossEntropyLoss(use_mask=True)``).
        init_cfg: Must be ``None`` (as in v2: the head initialises itself).

    Example:
        >>> head = FCNMaskHead(num_convs=1, in_channels=4, conv_out_channels=4, num_classes=3)
        >>> head(torch.rand(2, 4, 14, 14)).shape
        torch.Size([2, 3, 28, 28])
    """

    def __init__(
        self,
        num_convs: int = 4,
        roi_feat_size: int | tuple[int, int] = 14,
        in_channels: int = 256,
        conv_kernel_size: int = 3,
        conv_out_channels: int = 256,
        num_classes: int = 80,
        class_agnostic: bool = False,
        upsample_cfg: Cfg | None = None,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        predictor_cfg: Cfg | None = None,
        loss_mask: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if init_cfg is not None:
            raise InvalidArgumentError(
                "FCNMaskHead: init_cfg must be None (the head initialises its upsample and "
                f"conv_logits layers itself, as in MMDetection v2), got {init_cfg!r}"
            )
        if upsample_cfg is None:
            upsample_cfg = dict(type="deconv", scale_factor=2)
        upsample = dict(upsample_cfg)
        method = upsample.pop("type", None)
        if method not in _UPSAMPLE_METHODS:
            raise InvalidArgumentError(
                f"FCNMaskHead: upsample_cfg type {method!r} is not supported "
                f"(use one of {list(_UPSAMPLE_METHODS)})"
            )
        self.scale_factor = upsample.pop("scale_factor", None)
        if method is not None and self.scale_factor is None:
            raise InvalidArgumentError(
                f"FCNMaskHead: upsample_cfg type {method!r} needs a scale_factor"
            )
        if upsample and method != "carafe":  # the other keys of 'carafe' are CARAFEPack's
            raise InvalidArgumentError(
                f"FCNMaskHead: unexpected upsample_cfg keys {sorted(upsample)}"
            )
        self.upsample_method = method
        self.upsample_cfg = dict(type=method, scale_factor=self.scale_factor, **upsample)
        self.num_convs = num_convs
        self.roi_feat_size = _pair(roi_feat_size)
        self.in_channels = in_channels
        self.conv_kernel_size = conv_kernel_size
        self.conv_out_channels = conv_out_channels
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.predictor_cfg = predictor_cfg or dict(type="Conv")
        self.init_cfg = init_cfg
        self.loss_mask = build_module(
            loss_mask or dict(type="CrossEntropyLoss", use_mask=True, loss_weight=1.0), MODELS
        )
        self.convs = nn.ModuleList(
            ConvModule(
                in_channels if i == 0 else conv_out_channels,
                conv_out_channels,
                conv_kernel_size,
                padding=(conv_kernel_size - 1) // 2,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
            )
            for i in range(num_convs)
        )
        up_in = conv_out_channels if num_convs > 0 else in_channels
        self.upsample: nn.Module | None
        if method is None:
            self.upsample = None
        elif method == "carafe":
            try:
                self.upsample = CARAFEPack(up_in, self.scale_factor, **upsample)
            except TypeError as exc:
                raise InvalidArgumentError(
                    f"FCNMaskHead: upsample_cfg {dict(upsample_cfg)!r}: {exc}"
                ) from exc
        elif method == "deconv":
            self.upsample = nn.ConvTranspose2d(
                up_in, conv_out_channels, kernel_size=self.scale_factor, stride=self.scale_factor
            )
        else:
            self.upsample = nn.Upsample(
                scale_factor=self.scale_factor,
                mode=method,
                align_corners=None if method == "nearest" else False,
            )
        logits_in = conv_out_channels if method == "deconv" else up_in
        self.conv_logits = build_conv_layer(
            self.predictor_cfg, logits_in, 1 if class_agnostic else num_classes, 1
        )
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        """ConvModule defaults for the convs, CARAFE's own init for a CARAFE upsampler;
        Kaiming (fan_out) and zero bias for the rest."""
        for conv in self.convs:
            cast(ConvModule, conv).init_weights()
        for module in (self.upsample, self.conv_logits):
            if isinstance(module, CARAFEPack):
                module.init_weights()
                continue
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor):
                nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mask logits ``Tensor[K, num_classes or 1, 2h, 2w]`` of RoI features ``[K, C, h, w]``."""
        for conv in self.convs:
            x = conv(x)
        return self._predict(x)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Mask logits of the conv features ``x``: upsampling, then ``conv_logits``."""
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == "deconv":
                x = self.relu(x)
        logits: torch.Tensor = self.conv_logits(x)
        return logits

    def get_targets(
        self, sampling_results: Sequence[Any], gt_masks: Sequence[Any], rcnn_train_cfg: Cfg
    ) -> torch.Tensor:
        """Mask targets ``Tensor[P, mask_size, mask_size]`` of the positive RoIs."""
        return mask_target(
            [res.pos_bboxes for res in sampling_results],
            [res.pos_assigned_gt_inds for res in sampling_results],
            gt_masks,
            rcnn_train_cfg,
        )

    def loss(
        self, mask_pred: torch.Tensor, mask_targets: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss_mask``: BCE of each positive RoI's mask for its class (0 without RoIs)."""
        if mask_pred.size(0) == 0:
            loss_mask = mask_pred.sum() * 0
        else:
            cls = torch.zeros_like(labels) if self.class_agnostic else labels
            loss_mask = self.loss_mask(mask_pred, mask_targets, cls)
        return dict(loss_mask=loss_mask)

    def get_seg_masks(
        self,
        mask_pred: torch.Tensor | np.ndarray,
        det_bboxes: torch.Tensor,
        det_labels: torch.Tensor,
        rcnn_test_cfg: Cfg,
        ori_shape: Sequence[int],
        scale_factor: Any,
        rescale: bool,
    ) -> list[list[np.ndarray]]:
        """Per-class lists of full-image masks for one image's detections (v2).

        Args:
            mask_pred: ``Tensor[N, C, h, w]`` logits, or an ``ndarray`` of probabilities
                (already averaged over test-time augmentations); ``C`` may also be 1 with
                each detection's own class already selected (PointRend's refined masks).
            det_bboxes: ``Tensor[N, 4 or 5]`` boxes in the network-input frame.
            det_labels: ``Tensor[N]``.
            rcnn_test_cfg: Needs ``mask_thr_binary`` (negative: uint8 ``prob * 255`` masks).
            ori_shape: ``(h, w[, c])`` of the original image.
            scale_factor: ``[w, h, w, h]`` (or a float) from the input frame to the original.
            rescale: Paste at ``ori_shape`` (boxes divided by ``scale_factor``); otherwise at
                ``round(ori_shape * scale_factor)`` with the boxes as they are.

        Returns:
            ``segms[c]``: list of ``ndarray[H, W]`` bool masks of the detections of class ``c``
            in detection order.
        """
        num = len(mask_pred)
        if num != det_bboxes.size(0) or num != det_labels.numel():
            raise InvalidArgumentError(
                f"get_seg_masks: {num} masks for {det_bboxes.size(0)} boxes and "
                f"{det_labels.numel()} labels"
            )
        if len(ori_shape) < 2:
            raise InvalidArgumentError(
                f"get_seg_masks: ori_shape must be (h, w[, c]), got {ori_shape!r}"
            )
        bboxes = det_bboxes[:, :4]
        scale = _scale_vector(scale_factor, bboxes)
        if rescale:
            img_h, img_w = int(ori_shape[0]), int(ori_shape[1])
            bboxes = bboxes / scale.to(bboxes)
        else:
            img_h = int(np.round(ori_shape[0] * scale[1].item()))
            img_w = int(np.round(ori_shape[1] * scale[0].item()))
        cls_segms: list[list[np.ndarray]] = [[] for _ in range(self.num_classes)]
        if num == 0:
            return cls_segms
        probs = (
            mask_pred if isinstance(mask_pred, torch.Tensor) else det_bboxes.new_tensor(mask_pred)
        )
        if not self.class_agnostic and probs.shape[1] > 1:
            probs = probs[torch.arange(num, device=probs.device), det_labels][:, None]
        if isinstance(mask_pred, torch.Tensor):
            probs = probs.sigmoid()  # after picking the class: one channel instead of all
        threshold = float(rcnn_test_cfg["mask_thr_binary"])
        canvas = paste_masks(probs, bboxes, img_h, img_w, threshold)
        labels = det_labels.tolist()
        for i in range(num):
            cls_segms[labels[i]].append(canvas[i].detach().cpu().numpy())
        return cls_segms
