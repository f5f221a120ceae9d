"""Backbones (registered in ``MODELS``): ``ResNet``, ``ResNetV1d``, ``ResNeXt``."""

from detforge.models.backbones.resnet import ResNet, ResNetV1d
from detforge.models.backbones.resnext import ResNeXt

__all__ = ["ResNeXt", "ResNet", "ResNetV1d"]
