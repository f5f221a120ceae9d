"""Helpers shared by the peer-stack golden generators (tools/goldens/cornernet.py,
tools/goldens/reppoints.py); MMDetection 3.3 + mmengine, run with /work/peers/venv/bin/python."""

import json
import os

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MMDET_CFG = os.path.join(os.path.dirname(__import__("mmdet").__file__), ".mim", "configs")
PREPROCESS = dict(
    type="DetDataPreprocessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
)


def load_inputs():
    """The two tiny_coco images of the PAA fixture (v2 format: img, img_metas, gt_*)."""
    return torch.load(os.path.join(SHARED, "fixtures/mmdet/paa/inputs.pt"), weights_only=False)


def samples_from_v2(inp, label_mod=None):
    """MMDetection 3 data samples of v2 inputs (labels modulo ``label_mod`` when given)."""
    out = []
    for i, meta in enumerate(inp["img_metas"]):
        ds = DetDataSample(
            metainfo=dict(
                img_shape=tuple(meta["img_shape"][:2]),
                ori_shape=tuple(meta["ori_shape"][:2]),
                pad_shape=tuple(meta["pad_shape"][:2]),
                batch_input_shape=tuple(meta["batch_input_shape"]),
                scale_factor=(float(meta["scale_factor"][0]), float(meta["scale_factor"][1])),
                flip=False,
                flip_direction=None,
            )
        )
        gt = InstanceData()
        labels = inp["gt_labels"][i]
        gt.bboxes, gt.labels = (
            inp["gt_bboxes"][i],
            labels if label_mod is None else labels % label_mod,
        )
        ds.gt_instances = gt
        ignored = InstanceData()
        ignored.bboxes = inp["gt_bboxes_ignore"][i]
        ignored.labels = torch.zeros(len(ignored.bboxes), dtype=torch.long)
        ds.ignored_instances = ignored
        out.append(ds)
    return out


def fmt(obj, indent=0):
    """A config dict as ``dict(...)`` source text."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f"{pad}    {k}={fmt(v, indent + 4).lstrip()}," for k, v in obj.items()]
        return "dict(\n" + "\n".join(items) + f"\n{pad})"
    return repr(obj)


def write_layout(std_config, out):
    """``out/layout.json``: the full-size model's state_dict layout and parameter counts."""
    m = Config.fromfile(os.path.join(MMDET_CFG, std_config)).model.to_dict()
    m.pop("data_preprocessor")
    if "init_cfg" in m["backbone"]:
        m["backbone"]["init_cfg"] = None  # no download
    model = MODELS.build(ConfigDict(m))
    sd = model.state_dict()
    d = dict(
        config_path="configs/" + std_config,
        mmdet_version="3.3.0",
        num_params=sum(p.numel() for p in model.parameters()),
        num_trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        state_dict=[[k, list(v.shape)] for k, v in sd.items()],
    )
    with open(os.path.join(out, "layout.json"), "w") as f:
        json.dump(d, f, indent=None, separators=(",", ":"))
        f.write("\n")


def detections(model, img, samples, rescale):
    """``model.predict`` as a list of dicts (bboxes, scores, labels)."""
    res = model.predict(img, samples, rescale=rescale)
    return [
        dict(
            bboxes=r.pred_instances.bboxes.clone(),
            scores=r.pred_instances.scores.clone(),
            labels=r.pred_instances.labels.clone(),
        )
        for r in res
    ]
