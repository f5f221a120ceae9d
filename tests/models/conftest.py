"""Fixtures for the model tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run with one CPU thread, as the golden fixtures were computed: BN/GN backward sums (and
    the order of proposals whose scores tie to ~1e-8) depend on the reduction order, which moves
    the gradient norms of small BN biases by up to ~1e-4 relative with more threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def four_images(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 landscape images of tiny_coco (one aspect-ratio group: 2 batches) and their boxes."""
    coco = shared_data / "tiny_coco" / "small_coco"
    data = json.loads((coco / "instances_train2017_small.json").read_text())
    images = [image for image in data["images"] if image["width"] > image["height"]][:4]
    ids = {image["id"] for image in images}
    data["images"] = images
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    path = tmp_path_factory.mktemp("tiny_coco") / "four.json"
    path.write_text(json.dumps(data))
    return path
