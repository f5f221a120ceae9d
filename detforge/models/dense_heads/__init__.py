"""Dense (one-stage and RPN) heads."""

from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.models.dense_heads.rpn_head import RPNHead

__all__ = ["AnchorHead", "RPNHead", "RetinaHead"]
