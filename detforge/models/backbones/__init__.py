"""Backbones (registered in ``MODELS``): ``ResNet``, ``ResNetV1d``, ``ResNeXt``,
``DetectoRS_ResNet``, ``DetectoRS_ResNeXt``."""

from detforge.models.backbones.detectors_resnet import DetectoRS_ResNet
from detforge.models.backbones.detectors_resnext import DetectoRS_ResNeXt
from detforge.models.backbones.resnet import ResNet, ResNetV1d
from detforge.models.backbones.resnext import ResNeXt

__all__ = ["DetectoRS_ResNeXt", "DetectoRS_ResNet", "ResNeXt", "ResNet", "ResNetV1d"]
