"""Datasets, the v2 data pipeline, samplers and batching (registry ``DATASETS``).

Importing this package registers every dataset and transform.
"""

from detforge.datasets import transforms
from detforge.datasets.builder import build_dataloader, build_dataset, worker_init_fn
from detforge.datasets.cityscapes import CityscapesDataset
from detforge.datasets.coco import CocoDataset
from detforge.datasets.collate import collate
from detforge.datasets.custom import CustomDataset
from detforge.datasets.issues import DataIssues, DatasetError
from detforge.datasets.samplers import (
    DistributedGroupSampler,
    DistributedSampler,
    GroupSampler,
    InfiniteBatchSampler,
    InfiniteGroupBatchSampler,
)
from detforge.datasets.wrappers import (
    ClassBalancedDataset,
    ConcatDataset,
    MultiImageMixDataset,
    RepeatDataset,
)
from detforge.datasets.xml_style import VOCDataset, WIDERFaceDataset, XMLDataset

__all__ = [
    "CityscapesDataset",
    "ClassBalancedDataset",
    "CocoDataset",
    "ConcatDataset",
    "CustomDataset",
    "DataIssues",
    "DatasetError",
    "DistributedGroupSampler",
    "DistributedSampler",
    "GroupSampler",
    "InfiniteBatchSampler",
    "InfiniteGroupBatchSampler",
    "MultiImageMixDataset",
    "RepeatDataset",
    "VOCDataset",
    "WIDERFaceDataset",
    "XMLDataset",
    "build_dataloader",
    "build_dataset",
    "collate",
    "transforms",
    "worker_init_fn",
]
