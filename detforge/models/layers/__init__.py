"""Building blocks shared by backbones, necks and heads (mmcv 1.x ``cnn`` equivalents).

Layer configs use mmcv's names: ``conv_cfg`` (``Conv2d``, ``DCN``, ``DCNv2``), ``norm_cfg``
(``BN``, ``SyncBN``, ``GN``, ``LN``, ``IN``), ``act_cfg`` (``ReLU``, ``LeakyReLU``, ``SiLU``, ...),
and ``init_cfg`` (``Kaiming``, ``Xavier``, ``Normal``, ``Constant``, ``Pretrained``, ...).
"""

from detforge.models.layers.activation import (
    ACTIVATION_LAYERS,
    Clamp,
    HSigmoid,
    Swish,
    build_activation_layer,
)
from detforge.models.layers.conv import (
    CONV_LAYERS,
    PADDING_LAYERS,
    build_conv_layer,
    build_padding_layer,
)
from detforge.models.layers.conv_adaptive_padding import Conv2dAdaptivePadding
from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.csp_layer import CSPLayer, DarknetBottleneck
from detforge.models.layers.dcn import (
    DeformConv2d,
    DeformConv2dPack,
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
)
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.models.layers.init import (
    INITIALIZERS,
    apply_init_cfg,
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    initialize,
    kaiming_init,
    normal_init,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from detforge.models.layers.inverted_residual import InvertedResidual, make_divisible
from detforge.models.layers.norm import (
    NORM_LAYERS,
    SyncBatchNorm,
    batch_norms_to_eval,
    build_norm_layer,
    infer_abbr,
)
from detforge.models.layers.res_layer import BasicBlock, Bottleneck, ResLayer
from detforge.models.layers.scale import Scale
from detforge.models.layers.se_layer import SELayer

__all__ = [
    "ACTIVATION_LAYERS",
    "CONV_LAYERS",
    "INITIALIZERS",
    "NORM_LAYERS",
    "PADDING_LAYERS",
    "BasicBlock",
    "Bottleneck",
    "CSPLayer",
    "Clamp",
    "Conv2dAdaptivePadding",
    "ConvModule",
    "DarknetBottleneck",
    "DeformConv2d",
    "DeformConv2dPack",
    "DepthwiseSeparableConvModule",
    "HSigmoid",
    "InvertedResidual",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "ResLayer",
    "SELayer",
    "Scale",
    "Swish",
    "SyncBatchNorm",
    "apply_init_cfg",
    "batch_norms_to_eval",
    "bias_init_with_prob",
    "build_activation_layer",
    "build_conv_layer",
    "build_norm_layer",
    "build_padding_layer",
    "caffe2_xavier_init",
    "constant_init",
    "infer_abbr",
    "initialize",
    "kaiming_init",
    "make_divisible",
    "normal_init",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]
