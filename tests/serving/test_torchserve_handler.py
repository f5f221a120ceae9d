import base64
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from detforge.apis.inference import inference_detector
from detforge.serving.security import ServingError

HANDLER = Path(__file__).resolve().parents[2] / "tools" / "deployment" / "mmdet_handler.py"


def _v2_answer(result, classes, threshold):
    """v2's handler: ``score >= threshold``, class by class, boxes in the model's order."""
    return [
        (classes[label], [*row[:4]], float(row[4]))
        for label, rows in enumerate(result)
        for row in rows
        if float(row[4]) >= threshold
    ]


def _assert_same(answer, expected):
    assert [d["class_name"] for d in answer] == [name for name, _, _ in expected]
    got = np.array([d["bbox"] + [d["score"]] for d in answer]).reshape(-1, 5)
    want = np.array([[*bbox, score] for _, bbox, score in expected]).reshape(-1, 5)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_torchserve_handler_matches_v2_handler(tiny_detector, tmp_path):
    spec = importlib.util.spec_from_file_location("mmdet_handler", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # the barely trained model scores below the config's 0.05: keep its 10 best, as the fixture
    config = tiny_detector["config"].read_text()
    (tmp_path / "config.py").write_text(
        config + "\nmodel['test_cfg'].update(score_thr=0.0, max_per_img=10)\n"
    )
    shutil.copyfile(tiny_detector["checkpoint"], tmp_path / "model.pth")
    context = SimpleNamespace(
        system_properties={"model_dir": str(tmp_path), "gpu_id": None},
        manifest={"model": {"serializedFile": "model.pth"}},
    )
    handler = module.MMdetHandler()
    handler.initialize(context)
    assert str(handler.device) == "cpu"
    handler.threshold = 0.0
    paths = tiny_detector["images"][:2]
    requests = [{"data": paths[0].read_bytes()},
                {"body": base64.b64encode(paths[1].read_bytes()).decode()}]  # fmt: skip
    answers = handler.handle(requests, context)
    assert len(answers) == 2
    classes = handler.model.CLASSES
    results = [inference_detector(handler.model, str(path)) for path in paths]
    for result, answer in zip(results, answers, strict=True):
        assert len(answer) == sum(len(per_class) for per_class in result) == 10
        _assert_same(answer, _v2_answer(result, classes, 0.0))

    # a threshold equal to one score keeps that detection (>=, as v2), in class order
    result = results[0]
    scores = sorted(float(row[4]) for rows in result for row in rows)
    threshold = scores[len(scores) // 2]
    handler.threshold = threshold
    answer = handler.handle(requests[:1], context)[0]
    expected = _v2_answer(result, classes, threshold)
    assert len(answer) == len(expected) == sum(s >= threshold for s in scores)
    assert len(expected) == sum(s > threshold for s in scores) + 1
    _assert_same(answer, expected)
    labels = [classes.index(d["class_name"]) for d in answer]
    assert labels == sorted(labels)


def _handler(tiny_detector, tmp_path, **attrs):
    spec = importlib.util.spec_from_file_location("mmdet_handler_guard", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shutil.copyfile(tiny_detector["config"], tmp_path / "config.py")
    shutil.copyfile(tiny_detector["checkpoint"], tmp_path / "model.pth")
    context = SimpleNamespace(
        system_properties={"model_dir": str(tmp_path), "gpu_id": None},
        manifest={"model": {"serializedFile": "model.pth"}},
    )
    handler = module.MMdetHandler()
    for name, value in attrs.items():
        setattr(handler, name, value)
    handler.initialize(context)
    handler.threshold = 0.0
    return module, handler, context


def test_torchserve_handler_decodes_within_its_budget_and_runs_sizes_apart(
    tiny_detector, tmp_path, monkeypatch
):
    module, handler, context = _handler(tiny_detector, tmp_path, max_pixels_in_flight=20000)
    base = cv2.imread(str(tiny_detector["images"][0]))
    sizes = [(96, 96), (64, 80), (96, 96), (90, 120), (96, 96)]  # (h, w): 9216, 5120, 10800 px
    imgs = [cv2.resize(base, (w, h)) for h, w in sizes]
    requests = [{"data": cv2.imencode(".png", img)[1].tobytes()} for img in imgs]
    forwards = []
    real_inference = module.inference_detector

    def recording_inference(model, batch):
        forwards.append([img.shape[:2] for img in batch])
        return real_inference(model, batch)

    monkeypatch.setattr(module, "inference_detector", recording_inference)
    answers = handler.handle(requests, context)
    # the pixels held never passed the budget, so the batch ran in several forwards, and no
    # forward mixed sizes (a padded neighbour would change the answer)
    assert handler.budget.high_water <= 20000 and handler.budget.in_use == 0
    assert forwards == [[(96, 96)], [(64, 80)], [(96, 96)], [(90, 120)], [(96, 96)]]
    classes = handler.model.CLASSES
    for img, answer in zip(imgs, answers, strict=True):
        _assert_same(answer, _v2_answer(real_inference(handler.model, img), classes, 0.0))

    # a bad image fails the batch, and the images decoded before it give their pixels back
    with pytest.raises(ServingError) as info:
        handler.handle([requests[0], {"data": b"not an image"}], context)
    assert info.value.status == 415 and handler.budget.in_use == 0
