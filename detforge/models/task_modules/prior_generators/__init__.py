"""Prior (anchor) generators, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
from detforge.models.task_modules.prior_generators.legacy_anchor_generator import (
    LegacyAnchorGenerator,
    LegacySSDAnchorGenerator,
)
from detforge.models.task_modules.prior_generators.point_generator import (
    MlvlPointGenerator,
    PointGenerator,
)
from detforge.models.task_modules.prior_generators.ssd_anchor_generator import SSDAnchorGenerator
from detforge.models.task_modules.prior_generators.yolo_anchor_generator import YOLOAnchorGenerator

__all__ = [
    "AnchorGenerator",
    "LegacyAnchorGenerator",
    "LegacySSDAnchorGenerator",
    "MlvlPointGenerator",
    "PointGenerator",
    "SSDAnchorGenerator",
    "YOLOAnchorGenerator",
]
