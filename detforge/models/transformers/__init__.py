"""Transformer pieces of the DETR family with MMDetection v2.28's (mmcv 1.x) key layouts.

A 3.x checkpoint of DETR or Deformable DETR loads through :func:`convert_v3_detr_keys`.
"""

from detforge.models.transformers.bricks import (
    FFN,
    BaseTransformerLayer,
    DetrTransformerDecoder,
    DetrTransformerDecoderLayer,
    DetrTransformerEncoder,
    MultiheadAttention,
    TransformerLayerSequence,
    inverse_sigmoid,
)
from detforge.models.transformers.detr_transformer import (
    DeformableDetrTransformer,
    DeformableDetrTransformerDecoder,
    Transformer,
)
from detforge.models.transformers.ms_deform_attn import (
    MultiScaleDeformableAttention,
    multi_scale_deformable_attn,
)
from detforge.models.transformers.positional_encoding import (
    LearnedPositionalEncoding,
    SinePositionalEncoding,
)
from detforge.models.transformers.v3_keys import convert_v3_detr_keys

__all__ = [
    "FFN",
    "BaseTransformerLayer",
    "DeformableDetrTransformer",
    "DeformableDetrTransformerDecoder",
    "DetrTransformerDecoder",
    "DetrTransformerDecoderLayer",
    "DetrTransformerEncoder",
    "LearnedPositionalEncoding",
    "MultiScaleDeformableAttention",
    "MultiheadAttention",
    "SinePositionalEncoding",
    "Transformer",
    "TransformerLayerSequence",
    "convert_v3_detr_keys",
    "inverse_sigmoid",
    "multi_scale_deformable_attn",
]
