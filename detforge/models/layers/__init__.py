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
from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.dcn import (
    DeformConv2d,
    DeformConv2dPack,
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
)
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
from detforge.models.layers.linear import LINEAR_LAYERS, build_linear_layer
from detforge.models.layers.norm import NORM_LAYERS, SyncBatchNorm, build_norm_layer, infer_abbr
from detforge.models.layers.normed_predictor import NormedConv2d, NormedLinear
from detforge.models.layers.res_layer import BasicBlock, Bottleneck, ResLayer
from detforge.models.layers.scale import Scale

__all__ = [
    "ACTIVATION_LAYERS",
    "CONV_LAYERS",
    "INITIALIZERS",
    "LINEAR_LAYERS",
    "NORM_LAYERS",
    "PADDING_LAYERS",
    "BasicBlock",
    "Bottleneck",
    "Clamp",
    "ConvModule",
    "DeformConv2d",
    "DeformConv2dPack",
    "HSigmoid",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "NormedConv2d",
    "NormedLinear",
    "ResLayer",
    "Scale",
    "Swish",
    "SyncBatchNorm",
    "apply_init_cfg",
    "bias_init_with_prob",
    "build_activation_layer",
    "build_conv_layer",
    "build_linear_layer",
    "build_norm_layer",
    "build_padding_layer",
    "caffe2_xavier_init",
    "constant_init",
    "infer_abbr",
    "initialize",
    "kaiming_init",
    "normal_init",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]
