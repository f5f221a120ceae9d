"""Prior (anchor) generators, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
from detforge.models.task_modules.prior_generators.legacy_anchor_generator import (
    LegacyAnchorGenerator,
)
from detforge.models.task_modules.prior_generators.point_generator import (
    MlvlPointGenerator,
    PointGenerator,
)

__all__ = ["AnchorGenerator", "LegacyAnchorGenerator", "MlvlPointGenerator", "PointGenerator"]
