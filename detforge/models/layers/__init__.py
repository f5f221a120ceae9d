"""Building blocks shared by backbones, necks and heads (mmcv 1.x ``cnn`` equivalents).

Layer configs use mmcv's names: ``conv_cfg`` (``Conv2d``, ``DCN``, ``DCNv2``, ``ConvWS``,
``ConvAWS``, ``SAC``), ``norm_cfg`` (``BN``, ``SyncBN``, ``MMSyncBN``, ``GN``, ``LN``, ``IN``),
``act_cfg`` (``ReLU``, ``LeakyReLU``, ``SiLU``, ...), plugin configs of residual blocks
(``ContextBlock``, ``GeneralizedAttention``, ``NonLocal2d``) and ``init_cfg`` (``Kaiming``,
``Xavier``, ``Normal``, ``Constant``, ``Pretrained``, ...).
"""

from detforge.models.layers.activation import (
    ACTIVATION_LAYERS,
    Clamp,
    HSigmoid,
    Swish,
    build_activation_layer,
)
from detforge.models.layers.carafe import CARAFEPack, carafe
from detforge.models.layers.context_block import ContextBlock
from detforge.models.layers.conv import (
    CONV_LAYERS,
    PADDING_LAYERS,
    build_conv_layer,
    build_padding_layer,
)
from detforge.models.layers.conv_adaptive_padding import Conv2dAdaptivePadding
from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.conv_ws import ConvAWS2d, ConvWS2d, conv_ws_2d
from detforge.models.layers.csp_layer import CSPLayer, DarknetBottleneck
from detforge.models.layers.dcn import (
    DeformConv2d,
    DeformConv2dPack,
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
)
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.models.layers.generalized_attention import GeneralizedAttention
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
from detforge.models.layers.linear import LINEAR_LAYERS, build_linear_layer
from detforge.models.layers.merge_cells import ConcatCell, GlobalPoolingCell, SumCell
from detforge.models.layers.non_local import NonLocal2d
from detforge.models.layers.norm import (
    NORM_LAYERS,
    MMSyncBatchNorm,
    SyncBatchNorm,
    batch_norms_to_eval,
    build_norm_layer,
    infer_abbr,
)
from detforge.models.layers.normed_predictor import NormedConv2d, NormedLinear
from detforge.models.layers.plugin import PLUGIN_LAYERS, build_plugin_layer, plugin_abbr
from detforge.models.layers.res_layer import BasicBlock, Bottleneck, ResLayer
from detforge.models.layers.saconv import SAConv2d
from detforge.models.layers.scale import Scale
from detforge.models.layers.se_layer import SELayer

__all__ = [
    "ACTIVATION_LAYERS",
    "CONV_LAYERS",
    "INITIALIZERS",
    "LINEAR_LAYERS",
    "NORM_LAYERS",
    "PADDING_LAYERS",
    "PLUGIN_LAYERS",
    "BasicBlock",
    "Bottleneck",
    "CARAFEPack",
    "CSPLayer",
    "Clamp",
    "ConcatCell",
    "ContextBlock",
    "Conv2dAdaptivePadding",
    "ConvAWS2d",
    "ConvModule",
    "ConvWS2d",
    "DarknetBottleneck",
    "DeformConv2d",
    "DeformConv2dPack",
    "DepthwiseSeparableConvModule",
    "GeneralizedAttention",
    "GlobalPoolingCell",
    "HSigmoid",
    "InvertedResidual",
    "MMSyncBatchNorm",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "NonLocal2d",
    "NormedConv2d",
    "NormedLinear",
    "ResLayer",
    "SAConv2d",
    "SELayer",
    "Scale",
    "SumCell",
    "Swish",
    "SyncBatchNorm",
    "apply_init_cfg",
    "batch_norms_to_eval",
    "bias_init_with_prob",
    "build_activation_layer",
    "build_conv_layer",
    "build_linear_layer",
    "build_norm_layer",
    "build_padding_layer",
    "build_plugin_layer",
    "caffe2_xavier_init",
    "carafe",
    "constant_init",
    "conv_ws_2d",
    "infer_abbr",
    "initialize",
    "kaiming_init",
    "make_divisible",
    "normal_init",
    "plugin_abbr",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]
