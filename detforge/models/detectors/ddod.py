"""``DDOD``: backbone → FPN → :class:`DDODHead` (MMDetection v2's thin single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["DDOD"]


@MODELS.register_module()
class DDOD(SingleStageDetector):
    """DDOD detector; the arguments of :class:`SingleStageDetector`."""
