import base64
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from detforge.apis.inference import inference_detector

HANDLER = Path(__file__).resolve().parents[2] / "tools" / "deployment" / "mmdet_handler.py"


def test_torchserve_handler_matches_inference_detector(tiny_detector, tmp_path):
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
    handler.threshold = 0.0
    paths = tiny_detector["images"][:2]
    requests = [{"data": paths[0].read_bytes()},
                {"body": base64.b64encode(paths[1].read_bytes()).decode()}]  # fmt: skip
    answers = handler.handle(requests, context)
    assert len(answers) == 2
    for path, answer in zip(paths, answers, strict=True):
        result = inference_detector(handler.model, str(path))
        best = max((row for per_class in result for row in per_class), key=lambda r: r[4])
        assert answer[0]["class_name"] in ("rectangle", "ellipse")
        np.testing.assert_allclose(answer[0]["bbox"] + [answer[0]["score"]], best, atol=1e-4)
        assert len(answer) == sum(len(per_class) for per_class in result)
