"""``DetectoRS_ResNeXt``: :class:`DetectoRS_ResNet` with ResNeXt's grouped 3x3 convs (v2)."""

from __future__ import annotations

from typing import Any

from detforge.models.backbones.detectors_resnet import DetectoRS_ResNet
from detforge.registry import MODELS

__all__ = ["DetectoRS_ResNeXt"]


@MODELS.register_module()
class DetectoRS_ResNeXt(DetectoRS_ResNet):
    """DetectoRS ResNet whose 3x3 convs (SAC ones included) have ``groups`` groups.

    The 3x3 convs are ``floor(planes * base_width / base_channels) * groups`` wide, as in
    :class:`~detforge.models.backbones.ResNeXt`; plugins after conv1/conv2 get that width (v2
    built them with ``planes`` channels here, which only runs for ``groups=1``).

    Args:
        groups: Cardinality.
        base_width: Width of one group at ``base_channels``.
        **kwargs: :class:`DetectoRS_ResNet`'s arguments.

    Example:
        >>> net = DetectoRS_ResNeXt(depth=50, groups=4, base_width=4, base_channels=16,
        ...                         sac=dict(type='SAC'), stage_with_sac=(True,) * 4)
        >>> tuple(net.layer1[0].conv2.weight.shape)
        (16, 4, 3, 3)
    """

    def __init__(self, depth: int, groups: int = 1, base_width: int = 4, **kwargs: Any) -> None:
        # read by _block_args() while ResNet.__init__ builds the stages
        self.groups = groups
        self.base_width = base_width
        super().__init__(depth, **kwargs)

    def _block_args(self, stage: int) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "base_width": self.base_width,
            "base_channels": self.base_channels,
        }
