"""Backbones (registered in ``MODELS``): ``ResNet``, ``ResNetV1d``, ``ResNeXt``,
``MobileNetV2``, ``CSPDarknet``, ``Darknet``, ``SSDVGG``, ``HourglassNet``."""

from detforge.models.backbones.csp_darknet import CSPDarknet
from detforge.models.backbones.darknet import Darknet
from detforge.models.backbones.hourglass import HourglassNet
from detforge.models.backbones.mobilenet_v2 import MobileNetV2
from detforge.models.backbones.resnet import ResNet, ResNetV1d
from detforge.models.backbones.resnext import ResNeXt
from detforge.models.backbones.ssd_vgg import SSDVGG

__all__ = [
    "SSDVGG",
    "CSPDarknet",
    "Darknet",
    "HourglassNet",
    "MobileNetV2",
    "ResNeXt",
    "ResNet",
    "ResNetV1d",
]
