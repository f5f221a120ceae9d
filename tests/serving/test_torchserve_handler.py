import base64
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from detforge.apis.inference import inference_detector

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
