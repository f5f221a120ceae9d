"""init_detector / inference_detector / async / show_result_pyplot on real tiny trained models."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from detforge.apis import (
    async_inference_detector,
    inference_detector,
    init_detector,
    show_result_pyplot,
)
from detforge.apis.inference import resolve_device
from detforge.config import Config
from detforge.errors import UnknownTypeError
from detforge.evaluation.class_names import COCO_CLASSES
from detforge.utils.checkpoint import CheckpointError
from detforge.utils.image import ImageLoadError
from tests.apis.tiny_detector import FIXTURES, fixture_root, write_tiny_config


@pytest.fixture(scope="module")
def gfl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config, weights = write_tiny_config(tmp_path_factory.mktemp("gfl"), "gfl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return init_detector(str(config), str(weights), device="cpu")


def _images(shared_data: Path) -> list[Any]:
    """Four real images of four sizes (two upscaled, two downscaled), paths and arrays mixed.

    After ``Resize`` to fit 320×320 they are 320×214, 320×213, 320×218, 320×216 with scale
    factors 0.5 ... 0.8, and pad to 320×224 each.
    """
    demo = cv2.imread(str(shared_data / "mmdet_testdata/demo/demo.jpg"))
    dog = cv2.imread(str(shared_data / "demo_images/yolox/assets/dog.jpg"))
    return [
        str(shared_data / "mmdet_testdata/demo/demo.jpg"),
        shared_data / "demo_images/skimage/coffee.png",
        dog[100:440, 50:550].copy(),
        demo[50:320, 100:500].copy(),
    ]


@contextmanager
def _count_forwards(model: torch.nn.Module) -> Iterator[list[int]]:
    """Counts backbone passes while the block runs; the hook goes with it (the model is shared)."""
    calls = [0]

    def hook(*_: Any) -> None:
        calls[0] += 1

    handle = model.backbone.register_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def _rows(result: Any) -> np.ndarray:
    bbox = result[0] if isinstance(result, tuple) else result
    rows = [np.c_[arr, np.full(len(arr), label)] for label, arr in enumerate(bbox)]
    return np.vstack(rows)


def test_list_is_one_forward_and_equals_single_calls(gfl: Any, shared_data: Path) -> None:
    images = _images(shared_data)
    with _count_forwards(gfl) as calls:
        singles = [inference_detector(gfl, img) for img in images]
        assert calls[0] == 4
        batch = inference_detector(gfl, images)
        assert calls[0] == 5  # the whole list: one backbone pass
    assert not gfl.backbone._forward_pre_hooks
    assert isinstance(batch, list) and len(batch) == 4
    for single, batched, img in zip(singles, batch, images, strict=True):
        a, b = _rows(single), _rows(batched)
        assert len(a) == len(b) > 10
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        h, w = (img.shape if isinstance(img, np.ndarray) else cv2.imread(str(img)).shape)[:2]
        assert a[:, 2].max() <= w + 1e-3 and a[:, 3].max() <= h + 1e-3  # own size
    assert max(_rows(r)[:, 4].max() for r in batch) > 0.25


def test_batch_of_different_padded_shapes(gfl: Any, shared_data: Path) -> None:
    """A smaller image is padded up to the largest; the largest is unaffected by batching."""
    small = cv2.imread(str(shared_data / "mmdet_testdata/tests/data/color.jpg"))  # 512x288
    large = str(shared_data / "demo_images/yolox/assets/dog.jpg")  # 768x576
    with _count_forwards(gfl) as calls:
        batch = inference_detector(gfl, (small, large))
        assert calls[0] == 1
    np.testing.assert_allclose(
        _rows(batch[1]), _rows(inference_detector(gfl, large)), atol=1e-4, rtol=1e-6
    )
    rows = _rows(batch[0])
    assert rows[:, 2].max() <= 512 + 1e-3 and rows[:, 3].max() <= 288 + 1e-3


def test_array_equals_path_and_tuple_input(gfl: Any, shared_data: Path) -> None:
    path = shared_data / "mmdet_testdata/demo/demo.jpg"
    by_path = inference_detector(gfl, str(path))
    by_array = inference_detector(gfl, cv2.imread(str(path)))
    assert len(by_path) == 80
    np.testing.assert_array_equal(_rows(by_path), _rows(by_array))
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert len(inference_detector(gfl, gray)) == 80
    assert inference_detector(gfl, []) == []


def test_bad_inputs_name_the_culprit(gfl: Any, tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"missing\.jpg"):
        inference_detector(gfl, str(tmp_path / "missing.jpg"))
    with pytest.raises(TypeError, match="image 1"):
        inference_detector(gfl, [np.zeros((8, 8, 3), np.uint8), 42])
    with pytest.raises(ValueError, match=r"image 0.*\(8, 8, 5\)"):
        inference_detector(gfl, np.zeros((8, 8, 5), np.uint8))
    with pytest.warns(UserWarning, match="using COCO"):
        bare = init_detector(Config(dict(model=gfl.cfg.model.to_dict())), device="cpu")
    with pytest.raises(KeyError, match=r"data\.test\.pipeline"):
        inference_detector(bare, np.zeros((8, 8, 3), np.uint8))


def test_init_detector_classes_device_and_eval(tmp_path: Path) -> None:
    config, weights = write_tiny_config(tmp_path, "retinanet")
    state = torch.load(weights, weights_only=True)["state_dict"]
    names = tuple(f"thing{i}" for i in range(80))
    ckpt = tmp_path / "with_meta.pth"
    torch.save(dict(meta=dict(CLASSES=names), state_dict=state), ckpt)
    with (
        pytest.warns(UserWarning, match="CUDA is not available")
        if not (torch.cuda.is_available())
        else warnings.catch_warnings()
    ):
        model = init_detector(config, ckpt, device="cuda:0")
    assert names == model.CLASSES and model.PALETTE is None
    assert not model.training and isinstance(model.cfg, Config)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.parameters()).device.type == expected
    key = "bbox_head.retina_cls.weight"
    assert torch.equal(model.state_dict()[key].cpu(), state[key])
    palette = [(i, 2 * i, 3 * i) for i in range(80)]
    torch.save(dict(meta=dict(CLASSES=names, PALETTE=palette), state_dict=state), ckpt)
    with_palette = init_detector(config, ckpt, device="cpu")
    assert palette == with_palette.PALETTE  # as v2
    # no meta: the config's dataset (CocoDataset) names the classes
    assert init_detector(config, weights, device="cpu").CLASSES == COCO_CLASSES
    custom = init_detector(
        config, weights, device="cpu", cfg_options={"data.test.classes": ["a", "b"]}
    )
    assert custom.CLASSES == ("a", "b")
    # nothing at all: COCO's names, with a warning
    raw = Config.fromfile(fixture_root("retinanet") / "model.py")
    with pytest.warns(UserWarning, match="using COCO"):
        assert init_detector(raw, device="cpu").CLASSES == COCO_CLASSES
    with pytest.raises(TypeError, match="config must be"):
        init_detector(42, device="cpu")  # type: ignore[arg-type]


FAMILIES = sorted(p.name for p in FIXTURES.glob("*") if (p / "weights.pth").is_file())


@pytest.mark.parametrize("family", FAMILIES or ["none"])
def test_every_golden_checkpoint_loads_strictly(
    family: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MMDetection's own checkpoints fit without ``strict=False`` (the default)."""
    config, weights = write_tiny_config(tmp_path, family)
    try:
        with caplog.at_level("INFO", logger="detforge"):
            model = init_detector(config, weights, device="cpu")
    except UnknownTypeError as exc:
        pytest.skip(f"{family}: the model is not in detforge yet ({str(exc)[:60]})")
    total = len(model.state_dict())
    assert f"loaded {weights} into {type(model).__name__}: {total} of {total} tensors" in (
        caplog.text
    )
    state = torch.load(weights, weights_only=True)["state_dict"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_checkpoint_that_does_not_fit_is_an_error(tmp_path: Path) -> None:
    config, weights = write_tiny_config(tmp_path, "retinanet")
    empty = tmp_path / "empty.pth"
    torch.save({"state_dict": {}, "meta": {}}, empty)
    with pytest.raises(CheckpointError, match=rf"{empty} does not fit RetinaNet \(0 of "):
        init_detector(config, empty, device="cpu", strict=False)
    _, gfl_weights = write_tiny_config(tmp_path, "gfl")  # another model: its head is missing
    with pytest.raises(CheckpointError) as info:
        init_detector(config, gfl_weights, device="cpu")
    message = str(info.value)
    assert f"{gfl_weights} does not fit RetinaNet" in message
    assert "missing in checkpoint" in message and "bbox_head.retina_cls.weight" in message
    assert "unexpected in checkpoint" in message and "bbox_head.gfl_cls.weight" in message
    three = {"model.bbox_head.num_classes": 3}  # another class count
    with pytest.raises(CheckpointError, match=r"retina_cls.weight: checkpoint \(720, 32, 3, 3\)"):
        init_detector(config, weights, device="cpu", cfg_options=three)
    partial = init_detector(config, weights, device="cpu", cfg_options=three, strict=False)
    state = torch.load(weights, weights_only=True)["state_dict"]
    key = "backbone.layer1.0.conv1.weight"
    assert torch.equal(partial.state_dict()[key], state[key])


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # None never warns
        assert resolve_device(None) == torch.device("cpu")
        assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == torch.device("cuda:1")  # this process's GPU under torchrun
    assert resolve_device("cuda") == torch.device("cuda:1")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device(None) == torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert resolve_device("cuda:1") == torch.device("cpu")


def test_async_matches_sync(gfl: Any, shared_data: Path) -> None:
    path = str(shared_data / "mmdet_testdata/demo/demo.jpg")

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(async_inference_detector(gfl, path) for _ in range(2))))

    results = asyncio.run(main())
    expected = _rows(inference_detector(gfl, path))
    for result in results:
        np.testing.assert_allclose(_rows(result), expected, atol=1e-5, rtol=0)


def test_show_result_pyplot_writes_file(gfl: Any, shared_data: Path, tmp_path: Path) -> None:
    path = str(shared_data / "mmdet_testdata/demo/demo.jpg")
    result = inference_detector(gfl, path)
    out = tmp_path / "vis" / "out.png"
    drawn = show_result_pyplot(gfl, path, result, score_thr=0.3, palette="coco", out_file=out)
    written = cv2.imread(str(out))
    assert written.shape == (427, 640, 3)
    np.testing.assert_array_equal(written, drawn)
    assert (written != cv2.imread(path)).any(axis=2).sum() > 500


def test_replace_image_to_tensor_warns_as_v2() -> None:
    """v2's ``replace_ImageToTensor`` (both spellings) warns with a ``UserWarning``."""
    from detforge.apis.inference import replace_image_to_tensor, replace_ImageToTensor

    pipeline = [dict(type="MultiScaleFlipAug", transforms=[dict(type="ImageToTensor")])]
    with pytest.warns(UserWarning, match='"ImageToTensor" pipeline is replaced'):
        out = replace_ImageToTensor(pipeline)
    assert out == [dict(type="MultiScaleFlipAug", transforms=[dict(type="DefaultFormatBundle")])]
    assert replace_ImageToTensor is replace_image_to_tensor
