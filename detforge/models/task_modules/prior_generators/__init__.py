"""Prior (anchor) generators, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator

__all__ = ["AnchorGenerator"]
