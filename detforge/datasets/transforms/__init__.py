"""The v2 data pipeline (registry ``TRANSFORMS``, alias ``PIPELINES``).

A transform takes the v2 ``results`` dict and returns it (or ``None`` to drop the sample);
the keys are those of MMDetection v2 (see :mod:`detforge.structures` for the data contract).
Importing this package registers every transform.
"""

from detforge.datasets.transforms import (
    albu,
    augment,
    auto_augment,
    auto_augment_geometric,
    corrupt,
    crop,
    formatting,
    geometric,
    instaboost,
    loading,
    mix,
    photometric,
    test_time_aug,
)
from detforge.datasets.transforms.compose import Compose

__all__ = [
    "Compose",
    "albu",
    "augment",
    "auto_augment",
    "auto_augment_geometric",
    "corrupt",
    "crop",
    "formatting",
    "geometric",
    "instaboost",
    "loading",
    "mix",
    "photometric",
    "test_time_aug",
]
