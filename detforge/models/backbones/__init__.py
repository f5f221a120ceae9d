"""Backbones (registered in ``MODELS``).

``ResNet``, ``ResNetV1d``, ``ResNeXt``, ``RegNet``, ``Res2Net``, ``ResNeSt``, ``HRNet``,
``EfficientNet``.
"""

from detforge.models.backbones.efficientnet import EfficientNet
from detforge.models.backbones.hrnet import HRNet
from detforge.models.backbones.regnet import RegNet
from detforge.models.backbones.res2net import Res2Net
from detforge.models.backbones.resnest import ResNeSt
from detforge.models.backbones.resnet import ResNet, ResNetV1d
from detforge.models.backbones.resnext import ResNeXt

__all__ = [
    "EfficientNet",
    "HRNet",
    "RegNet",
    "Res2Net",
    "ResNeSt",
    "ResNeXt",
    "ResNet",
    "ResNetV1d",
]
