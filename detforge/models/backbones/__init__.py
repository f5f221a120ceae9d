"""Backbones (registered in ``MODELS``): ``ResNet``, ``ResNetV1d``, ``ResNeXt``, ``RegNet``,
``Res2Net``, ``ResNeSt``, ``HRNet``, ``EfficientNet``, ``MobileNetV2``, ``CSPDarknet``,
``Darknet``, ``SSDVGG``, ``HourglassNet``, ``DetectoRS_ResNet``, ``DetectoRS_ResNeXt``,
``SwinTransformer``, ``PyramidVisionTransformer(V2)``, ``ConvNeXt`` (also ``mmcls.ConvNeXt``),
``TIMMBackbone`` (also ``mmcls.TIMMBackbone``; needs timm)."""

from detforge.models.backbones.convnext import ConvNeXt
from detforge.models.backbones.csp_darknet import CSPDarknet
from detforge.models.backbones.darknet import Darknet
from detforge.models.backbones.detectors_resnet import DetectoRS_ResNet
from detforge.models.backbones.detectors_resnext import DetectoRS_ResNeXt
from detforge.models.backbones.efficientnet import EfficientNet
from detforge.models.backbones.hourglass import HourglassNet
from detforge.models.backbones.hrnet import HRNet
from detforge.models.backbones.mobilenet_v2 import MobileNetV2
from detforge.models.backbones.pvt import PyramidVisionTransformer, PyramidVisionTransformerV2
from detforge.models.backbones.regnet import RegNet
from detforge.models.backbones.res2net import Res2Net
from detforge.models.backbones.resnest import ResNeSt
from detforge.models.backbones.resnet import ResNet, ResNetV1d
from detforge.models.backbones.resnext import ResNeXt
from detforge.models.backbones.ssd_vgg import SSDVGG
from detforge.models.backbones.swin import SwinTransformer
from detforge.models.backbones.timm_backbone import TIMMBackbone

__all__ = [
    "SSDVGG",
    "CSPDarknet",
    "ConvNeXt",
    "Darknet",
    "DetectoRS_ResNeXt",
    "DetectoRS_ResNet",
    "EfficientNet",
    "HRNet",
    "HourglassNet",
    "MobileNetV2",
    "PyramidVisionTransformer",
    "PyramidVisionTransformerV2",
    "RegNet",
    "Res2Net",
    "ResNeSt",
    "ResNeXt",
    "ResNet",
    "ResNetV1d",
    "SwinTransformer",
    "TIMMBackbone",
]
