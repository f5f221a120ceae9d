"""Backbones (registered in ``MODELS``): ``ResNet``, ``ResNetV1d``, ``ResNeXt``,
``SwinTransformer``, ``PyramidVisionTransformer(V2)``, ``ConvNeXt`` (also ``mmcls.ConvNeXt``),
``TIMMBackbone`` (also ``mmcls.TIMMBackbone``; needs timm)."""

from detforge.models.backbones.convnext import ConvNeXt
from detforge.models.backbones.pvt import PyramidVisionTransformer, PyramidVisionTransformerV2
from detforge.models.backbones.resnet import ResNet, ResNetV1d
from detforge.models.backbones.resnext import ResNeXt
from detforge.models.backbones.swin import SwinTransformer
from detforge.models.backbones.timm_backbone import TIMMBackbone

__all__ = [
    "ConvNeXt",
    "PyramidVisionTransformer",
    "PyramidVisionTransformerV2",
    "ResNeXt",
    "ResNet",
    "ResNetV1d",
    "SwinTransformer",
    "TIMMBackbone",
]
