"""Models: layers, backbones, necks, heads, losses, task modules and detectors.

Importing this package registers every model component in ``detforge.registry.MODELS`` and
``TASK_UTILS``.
"""

from detforge.models import (
    backbones,
    dense_heads,
    detectors,
    layers,
    losses,
    necks,
    roi_heads,
    task_modules,
    transformers,
)
from detforge.models.builder import (
    build_backbone,
    build_detector,
    build_head,
    build_loss,
    build_neck,
)

__all__ = [
    "backbones",
    "build_backbone",
    "build_detector",
    "build_head",
    "build_loss",
    "build_neck",
    "dense_heads",
    "detectors",
    "layers",
    "losses",
    "necks",
    "roi_heads",
    "task_modules",
    "transformers",
]
