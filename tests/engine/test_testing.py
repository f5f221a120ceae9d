"""multi_gpu_test: two gloo processes gather their shards on rank 0 in dataset order, through
all_gather and through a --tmpdir folder, for an odd dataset size (the last shard padded).
Both loops keep an unreadable image's place with an empty result."""

from __future__ import annotations

import logging
import pickle
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from detforge.datasets.builder import build_dataloader
from detforge.datasets.issues import UnreadableImage
from detforge.engine.testing import merge_parts, multi_gpu_test, single_gpu_test

SIZE = 5


class IndexDataset(Dataset[dict[str, Any]]):
    def __len__(self) -> int:
        return SIZE

    def __getitem__(self, i: int) -> dict[str, Any]:
        return dict(img=torch.full((3, 4, 4), float(i)), img_metas=dict(index=i))


class EchoDetector(nn.Module):
    """One class; one box per image whose coordinates are the image index."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, img: list[torch.Tensor], img_metas: list[Any], **kwargs: Any) -> list[Any]:
        assert kwargs["return_loss"] is False
        return [[np.full((1, 5), meta["index"], np.float32)] for meta in img_metas[0]]


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        loader = build_dataloader(IndexDataset(), 2, 0, dist=True, shuffle=False)
        got = {
            "gather": multi_gpu_test(EchoDetector(), loader, gpu_collect=True),
            "default": multi_gpu_test(EchoDetector(), loader),
            "tmpdir": multi_gpu_test(EchoDetector(), loader, tmpdir=f"{out_dir}/parts"),
        }
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump(got, f)
    finally:
        dist.destroy_process_group()


def test_both_collections_give_dataset_order(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    rank0 = pickle.loads((tmp_path / "rank0.pkl").read_bytes())
    rank1 = pickle.loads((tmp_path / "rank1.pkl").read_bytes())
    for mode in ("gather", "default", "tmpdir"):
        assert rank1[mode] is None, mode
        indices = [int(result[0][0, 0]) for result in rank0[mode]]
        assert indices == list(range(SIZE)), mode
    assert not (tmp_path / "parts").exists()


def test_merge_parts_checks_lengths() -> None:
    assert merge_parts([[0, 2, 4], [1, 3, 0]], 5) == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match=r"\[2, 1\]"):
        merge_parts([[0, 2], [1]], 3)


class SomeUnreadable(IndexDataset):
    """IndexDataset whose images ``unreadable`` cannot be read (as a test-mode CustomDataset)."""

    CLASSES = ("thing",)

    def __init__(self, unreadable: set[int]) -> None:
        self.unreadable = unreadable

    def __getitem__(self, i: int) -> Any:
        if i in self.unreadable:
            return UnreadableImage(f"{i}.jpg", f"could not decode image: /data/{i}.jpg")
        return super().__getitem__(i)


def _summary(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "unreadable images (" in r.getMessage()]


@pytest.mark.parametrize("test_fn", [single_gpu_test, multi_gpu_test])
def test_unreadable_images_get_empty_results_in_their_places(
    test_fn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # batches [0, 1], [2, 3], [4]: the second holds no readable image, the model skips it
    loader = build_dataloader(SomeUnreadable({1, 2, 3}), 2, 0, dist=False, shuffle=False)
    with caplog.at_level(logging.WARNING, logger="detforge"):
        results = test_fn(EchoDetector(), loader)
    assert len(results) == SIZE
    assert [r[0].shape for r in results] == [(1, 5), (0, 5), (0, 5), (0, 5), (1, 5)]
    assert results[0][0][0, 0] == 0 and results[4][0][0, 0] == 4
    assert results[1][0].dtype == np.float32  # like the detector's own arrays
    assert _summary(caplog) == [
        "SomeUnreadable: skipped 3 unreadable images (1.jpg, 2.jpg, 3.jpg); each is kept with an "
        "empty detection list, so the results stay aligned with the annotation file"
    ]


def test_no_readable_image_gives_empty_results_per_class(caplog: pytest.LogCaptureFixture) -> None:
    loader = build_dataloader(SomeUnreadable(set(range(SIZE))), 2, 0, dist=False, shuffle=False)
    results = single_gpu_test(EchoDetector(), loader)
    assert [[a.shape for a in r] for r in results] == [[(0, 5)]] * SIZE
