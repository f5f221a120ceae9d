"""Collate: bottom-right padding to the batch maximum, lists for everything else."""

from __future__ import annotations

import pytest
import torch

from detforge.datasets.collate import UNREADABLE_KEY, collate, pad_and_stack
from detforge.datasets.issues import UnreadableImage


def test_images_padded_bottom_right_and_stacked() -> None:
    a = torch.ones(3, 32, 64)
    b = torch.full((3, 64, 32), 2.0)
    batch = collate(
        [
            dict(img=a, img_metas=dict(i=0), gt_bboxes=torch.zeros(1, 4)),
            dict(img=b, img_metas=dict(i=1), gt_bboxes=torch.zeros(2, 4)),
        ]
    )
    assert batch["img"].shape == (2, 3, 64, 64)
    assert torch.equal(batch["img"][0, :, :32, :64], a)
    assert batch["img"][0, :, 32:, :].abs().sum() == 0
    assert batch["img"][1, :, :, 32:].abs().sum() == 0
    assert [m["i"] for m in batch["img_metas"]] == [0, 1]
    assert [len(b) for b in batch["gt_bboxes"]] == [1, 2]


def test_segmentation_padded_with_255() -> None:
    seg = [torch.zeros(1, 2, 2, dtype=torch.uint8), torch.zeros(1, 3, 2, dtype=torch.uint8)]
    out = collate([dict(img=torch.zeros(3, 2, 2), gt_semantic_seg=seg[0]),
                   dict(img=torch.zeros(3, 3, 2), gt_semantic_seg=seg[1])])  # fmt: skip
    assert out["gt_semantic_seg"].shape == (2, 1, 3, 2)
    assert int(out["gt_semantic_seg"][0, 0, 2, 0]) == 255


def test_test_time_augmented_samples() -> None:
    sample = dict(
        img=[torch.zeros(3, 4, 4), torch.zeros(3, 8, 8)], img_metas=[dict(a=0), dict(a=1)]
    )
    out = collate([sample, sample])
    assert [t.shape for t in out["img"]] == [(2, 3, 4, 4), (2, 3, 8, 8)]
    assert out["img_metas"][1] == [dict(a=1), dict(a=1)]


def test_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(ValueError, match="different keys"):
        collate([dict(img=torch.zeros(3, 2, 2)), dict(img=torch.zeros(3, 2, 2), x=1)])
    with pytest.raises(ValueError, match="leading"):
        pad_and_stack([torch.zeros(3, 2, 2), torch.zeros(1, 2, 2)])


def test_unreadable_images_keep_their_places_beside_the_batch() -> None:
    bad = UnreadableImage("b.jpg", "image file is empty: data/b.jpg")
    batch = collate([dict(img=torch.zeros(3, 2, 2), img_metas=dict(i=0)), bad,
                     dict(img=torch.ones(3, 4, 2), img_metas=dict(i=2))])  # fmt: skip
    assert batch["img"].shape == (2, 3, 4, 2)
    assert [m["i"] for m in batch["img_metas"]] == [0, 2]
    assert batch[UNREADABLE_KEY] == [None, bad, None]
    assert collate([bad, bad]) == {UNREADABLE_KEY: [bad, bad]}
    assert UNREADABLE_KEY not in collate([dict(img=torch.zeros(3, 2, 2))])
