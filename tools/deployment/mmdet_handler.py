"""A TorchServe handler (v2's ``tools/deployment/mmdet_handler.py``) over ``detforge.apis``.

Archive a model with ``torch-model-archiver --handler tools/deployment/mmdet_handler.py
--serialized-file CHECKPOINT --extra-files CONFIG`` (the config named ``config.py``). Each
request's ``data``/``body`` holds image bytes (or base64 text); the answer for each image is
v2's list of ``{"class_name", "bbox", "score"}`` scoring at least ``threshold``, class by class
(within a class in the model's order), as v2's handler answers. Without TorchServe the
class still works on its own (tests call it with a stand-in context).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from detforge.apis.inference import inference_detector, init_detector
from detforge.serving.security import decode_image
from detforge.structures.det_result import result_to_detections
from detforge.utils.device import model_device

try:  # TorchServe is optional: the handler is also usable (and tested) without it
    from ts.torch_handler.base_handler import BaseHandler  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    BaseHandler = object

__all__ = ["MMdetHandler"]


class MMdetHandler(BaseHandler):  # type: ignore[misc,valid-type]
    """Load ``config.py`` + the serialized checkpoint from the model dir; detect per request."""

    threshold = 0.5

    def initialize(self, context: Any) -> None:
        properties = context.system_properties
        gpu = properties.get("gpu_id")
        device = f"cuda:{gpu}" if gpu is not None else "cpu"  # no CUDA: the CPU, with a warning
        model_dir = properties.get("model_dir")
        checkpoint = os.path.join(model_dir, context.manifest["model"]["serializedFile"])
        self.model = init_detector(os.path.join(model_dir, "config.py"), checkpoint, device)
        self.device = model_device(self.model)
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> list[Any]:
        images = []
        for row in data:
            image = row.get("data") or row.get("body")
            if isinstance(image, str):
                image = base64.b64decode(image)
            images.append(decode_image(bytes(image)).img)
        return images

    def inference(self, data: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return list(inference_detector(self.model, data))

    def postprocess(self, data: list[Any]) -> list[list[dict[str, Any]]]:
        classes = self.model.CLASSES
        return [
            [
                {"class_name": d["class"], "bbox": d["bbox"], "score": d["score"]}
                for d in result_to_detections(
                    result, classes, self.threshold, strict=False, by_score=False
                )
            ]
            for result in data
        ]

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[list[dict[str, Any]]]:
        """TorchServe's entry point: preprocess, one batched inference, postprocess."""
        return self.postprocess(self.inference(self.preprocess(data)))
