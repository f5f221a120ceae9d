"""Shared code of the Model zoo III two-stage goldens (HTC with semantics, SCNet, Mask Scoring
R-CNN, PointRend), run with the peer stack (MMDetection 3.3.0 + mmcv 2.1.0, CPU, one thread).

A family script gives a tiny model dict in v2 syntax; this module

1. trains it briefly on tiny_coco with MMDetection's Runner (``TRAIN_ITERS`` iterations, SGD,
   the standard config's random samplers instead of the take-everything ones of the fixture);
2. rounds every floating weight to float16 (stored as float16: the goldens stay small and
   both sides compute with the same float32 values);
3. computes, from the saved weights, on the two images of the shared fixtures (Resize 320
   keep-ratio, normalise, pad to 32): neck features, proposals, detections with and without
   rescale, the RLE masks of the rescaled detections, the training losses (seeded) and the
   gradient norms of every parameter;
4. writes ``model.py`` (v2 syntax), ``weights.pth``, ``expected.pt``, ``info.json`` and
   ``layout.json`` (the full-size standard config's state-dict keys and shapes) to
   ``tests/data/goldens/<family>/``, and the batch, the same for every family, to
   ``tests/data/goldens/zoo3_inputs.pt`` (v2 names: ``img``, ``img_metas``, ``gt_bboxes``,
   ``gt_labels``, ``gt_bboxes_ignore``, ``gt_masks``, ``gt_semantic_seg``).

Semantic maps: tiny_coco has no COCO-stuff maps, so ``seg_maps()`` paints each image's
instance masks with ``category_id - 1`` (the stuffthingmaps value of a thing class) on 255
(ignored), larger instances first.
"""

from __future__ import annotations

import copy
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))
TINY_COCO = SHARED / "data" / "tiny_coco" / "small_coco"
ANN = "instances_train2017_small.json"
IMAGES = ["000000184613.jpg", "000000374628.jpg"]
SEG_DIR = Path(os.environ.get("ZOO3_SEG_DIR", "/tmp/zoo3_goldens_seg"))
MMDET_CONFIGS = Path(
    os.environ.get(
        "MMDET_CONFIGS", "/work/peers/venv/lib/python3.11/site-packages/mmdet/.mim/configs"
    )
)
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
SCALE = (320, 320)
TRAIN_ITERS = 60
LOSS_SEED = 0
WIDTH = 16
TINY_BACKBONE = dict(
    type="ResNet",
    depth=18,
    base_channels=8,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type="BN", requires_grad=True),
    norm_eval=True,
    style="pytorch",
    init_cfg=None,
)
TAKE_ALL_RPN = dict(
    type="RandomSampler", num=1000000, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False
)
TAKE_ALL_RCNN = dict(
    type="RandomSampler", num=1000000, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=True
)
STD_RPN = dict(
    type="RandomSampler", num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False
)
STD_RCNN = dict(
    type="RandomSampler", num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True
)


def v2_model(config: str) -> dict:
    """The model dict of an MMDetection v2.28.2 config (from /work/mmdet_v2)."""
    from mmengine.config import Config

    return Config.fromfile(str(Path("/work/mmdet_v2/configs") / config)).model.to_dict()


def tiny_two_stage(model: dict) -> dict:
    """R-18 (8 base channels) + FPN (16) + RPN + RoI heads at ``WIDTH`` channels; every
    sampler takes all candidates (deterministic losses)."""
    m = copy.deepcopy(model)
    m["backbone"] = copy.deepcopy(TINY_BACKBONE)
    m["neck"].update(in_channels=[8, 16, 32, 64], out_channels=WIDTH)
    m["rpn_head"].update(in_channels=WIDTH, feat_channels=WIDTH)
    rh = m["roi_head"]
    for key in ("bbox_roi_extractor", "mask_roi_extractor", "semantic_roi_extractor"):
        if rh.get(key):
            rh[key]["out_channels"] = WIDTH
    for bh in rh["bbox_head"] if isinstance(rh["bbox_head"], list) else [rh["bbox_head"]]:
        bh.update(in_channels=WIDTH, fc_out_channels=32)
    for mh in rh["mask_head"] if isinstance(rh["mask_head"], list) else [rh["mask_head"]]:
        mh.update(in_channels=WIDTH, conv_out_channels=WIDTH)
    train = m["train_cfg"]
    train["rpn"]["sampler"] = copy.deepcopy(TAKE_ALL_RPN)
    for rcnn in train["rcnn"] if isinstance(train["rcnn"], list) else [train["rcnn"]]:
        rcnn["sampler"] = copy.deepcopy(TAKE_ALL_RCNN)
    return m


# ------------------------------------------------------------------------------- data
def seg_maps() -> Path:
    """Write ``SEG_DIR/<image>.png`` for every tiny_coco image (module docstring)."""
    import cv2
    from pycocotools.coco import COCO

    SEG_DIR.mkdir(parents=True, exist_ok=True)
    coco = COCO(str(TINY_COCO / ANN))
    for img_id, info in coco.imgs.items():
        seg = np.full((info["height"], info["width"]), 255, np.uint8)
        anns = sorted(coco.imgToAnns[img_id], key=lambda a: -a["area"])
        for ann in anns:
            seg[coco.annToMask(ann) > 0] = ann["category_id"] - 1
        cv2.imwrite(str(SEG_DIR / (info["file_name"].rsplit(".", 1)[0] + ".png")), seg)
    return SEG_DIR


def _pipeline(with_seg: bool, train: bool) -> list:
    pipe = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True, with_seg=with_seg),
        dict(type="Resize", scale=SCALE, keep_ratio=True),
    ]
    if train:
        pipe.append(dict(type="RandomFlip", prob=0.5))
    meta = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
    pipe.append(dict(type="PackDetInputs") if train else dict(type="PackDetInputs", meta_keys=meta))
    return pipe


def _dataset(with_seg: bool, train: bool) -> dict:
    prefix = dict(img="train_2017_small/")
    if with_seg:
        prefix["seg"] = str(seg_maps()) + "/"
    return dict(
        type="CocoDataset",
        data_root=str(TINY_COCO) + "/",
        ann_file=ANN,
        data_prefix=prefix,
        filter_cfg=dict(filter_empty_gt=True, min_size=32) if train else None,
        pipeline=_pipeline(with_seg, train),
        test_mode=not train,
    )


def preprocessor(with_seg: bool) -> dict:
    return dict(
        type="DetDataPreprocessor",
        mean=MEAN,
        std=STD,
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        pad_seg=with_seg,
        seg_pad_value=255,
    )


def build_v3(model: dict, with_seg: bool):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict

    register_all_modules()
    d = copy.deepcopy(model)
    d["data_preprocessor"] = preprocessor(with_seg)
    return MODELS.build(ConfigDict(d))


def train_weights(name: str, model: dict, with_seg: bool) -> OrderedDict:
    """``TRAIN_ITERS`` iterations of MMDetection's Runner (standard random samplers)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    m = copy.deepcopy(model)
    m["data_preprocessor"] = preprocessor(with_seg)
    m["train_cfg"]["rpn"]["sampler"] = copy.deepcopy(STD_RPN)
    rcnn = m["train_cfg"]["rcnn"]
    for r in rcnn if isinstance(rcnn, list) else [rcnn]:
        r["sampler"] = copy.deepcopy(STD_RCNN)
    work = Path("/tmp/zoo3_goldens_work") / name
    cfg = Config(
        dict(
            default_scope="mmdet",
            model=m,
            work_dir=str(work),
            train_dataloader=dict(
                batch_size=2,
                num_workers=0,
                persistent_workers=False,
                sampler=dict(type="DefaultSampler", shuffle=True),
                batch_sampler=dict(type="AspectRatioBatchSampler"),
                dataset=_dataset(with_seg, train=True),
            ),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=TRAIN_ITERS, val_interval=10**9),
            optim_wrapper=dict(
                type="OptimWrapper",
                optimizer=dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=0.0001),
                clip_grad=dict(max_norm=35, norm_type=2),
            ),
            param_scheduler=[
                dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=20)
            ],
            default_hooks=dict(
                timer=dict(type="IterTimerHook"),
                logger=dict(type="LoggerHook", interval=10),
                param_scheduler=dict(type="ParamSchedulerHook"),
                checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=10**9),
            ),
            env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
            log_processor=dict(type="LogProcessor", window_size=10, by_epoch=False),
            randomness=dict(seed=0, deterministic=False),
        )
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    state = runner.model.state_dict()
    return OrderedDict((k, v.detach().clone()) for k, v in state.items())


def round_fp16(state: OrderedDict) -> OrderedDict:
    """Floating tensors rounded to float16 values (kept as float32 for computing)."""
    return OrderedDict(
        (k, v.half().float() if v.is_floating_point() else v) for k, v in state.items()
    )


def samples(with_seg: bool) -> list:
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    ds = DATASETS.build(_dataset(with_seg, train=False))
    index = {os.path.basename(ds.get_data_info(i)["img_path"]): i for i in range(len(ds))}
    out = []
    for name in IMAGES:
        sample = ds[index[name]]
        sample["data_samples"].set_metainfo(dict(flip=False, flip_direction=None))
        out.append(sample)
    return out


def encode_masks(masks: torch.Tensor) -> list:
    from pycocotools import mask as mask_util

    out = []
    for m in masks.cpu().numpy():
        rle = mask_util.encode(np.array(m[:, :, None], order="F", dtype=np.uint8))[0]
        out.append({"size": [int(x) for x in rle["size"]], "counts": rle["counts"].decode()})
    return out


def inst(results) -> dict:
    return {
        "bboxes": results.bboxes.detach().clone().float(),
        "scores": results.scores.detach().clone().float(),
        "labels": results.labels.detach().clone().long(),
    }


def v2_inputs(inputs: torch.Tensor, data_samples: list, with_seg: bool) -> dict:
    """The batch in MMDetection v2's ``forward_train`` names: ``img`` float16, each image's
    ``gt_masks`` (padded to the batch) as ``np.packbits`` of the flattened ``[n, H, W]``
    bools."""
    metas, boxes, labels, ignores, masks = [], [], [], [], []
    for ds in data_samples:
        sx, sy = ds.scale_factor
        h, w = ds.img_shape
        metas.append(
            {
                "filename": os.path.basename(ds.img_path),
                "ori_filename": os.path.basename(ds.img_path),
                "ori_shape": (int(ds.ori_shape[0]), int(ds.ori_shape[1]), 3),
                "img_shape": (int(h), int(w), 3),
                "pad_shape": (int(ds.pad_shape[0]), int(ds.pad_shape[1]), 3),
                "batch_input_shape": tuple(int(x) for x in ds.batch_input_shape),
                "scale_factor": np.array([sx, sy, sx, sy], dtype=np.float32),
                "flip": False,
                "flip_direction": None,
                "img_norm_cfg": dict(
                    mean=np.array(MEAN, np.float32), std=np.array(STD, np.float32), to_rgb=True
                ),
            }
        )
        gi = ds.gt_instances
        boxes.append(torch.as_tensor(gi.bboxes).float().clone().reshape(-1, 4))
        labels.append(gi.labels.long().clone())
        ig = ds.ignored_instances
        ignores.append(
            torch.as_tensor(ig.bboxes).float().clone().reshape(-1, 4)
            if "bboxes" in ig
            else torch.zeros(0, 4)
        )
        bits = gi.masks.masks.astype(bool)
        masks.append({"shape": list(bits.shape), "bits": np.packbits(bits.reshape(-1))})
    out = {
        "img": inputs.detach().clone().half(),
        "img_metas": metas,
        "gt_bboxes": boxes,
        "gt_labels": labels,
        "gt_bboxes_ignore": ignores,
        "gt_masks": masks,
    }
    if with_seg:
        seg = torch.stack([ds.gt_sem_seg.sem_seg for ds in data_samples]).float()
        # what the v2 pipeline collates after SegRescale(1/8): nearest, every 8th pixel
        seg = torch.nn.functional.interpolate(seg, scale_factor=1 / 8, mode="nearest")
        out["gt_semantic_seg"] = seg.to(torch.uint8)
    return out


def compute(model_dict: dict, state: OrderedDict, with_seg: bool, extra=None) -> tuple:
    """Build from scratch, load ``state``, compute the expected outputs (module docstring)."""
    from mmengine.dataset import pseudo_collate

    torch.manual_seed(0)
    model = build_v3(model_dict, with_seg)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    data = pseudo_collate(samples(with_seg))
    test_data = model.data_preprocessor(copy.deepcopy(data), training=False)
    train_data = model.data_preprocessor(copy.deepcopy(data), training=True)
    assert torch.equal(test_data["inputs"], train_data["inputs"])
    # the stored image is float16: compute from exactly those values
    test_data["inputs"] = train_data["inputs"] = test_data["inputs"].half().float()
    inputs = test_data["inputs"]
    exp: dict = {}
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        exp["neck"] = [f.detach().clone() for f in feats]
        props = model.rpn_head.predict(
            feats, copy.deepcopy(test_data["data_samples"]), rescale=False
        )
        exp["proposals"] = [torch.cat([p.bboxes, p.scores[:, None]], 1).clone() for p in props]
        for rescale, key in ((False, "dets"), (True, "dets_rescaled")):
            res = model.predict(inputs, copy.deepcopy(test_data["data_samples"]), rescale=rescale)
            exp[key] = [inst(r.pred_instances) for r in res]
            if rescale:
                exp["masks"] = [encode_masks(r.pred_instances.masks) for r in res]
        if extra is not None:
            extra(model, feats, test_data, exp)
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(LOSS_SEED)
    losses = model.loss(train_data["inputs"], copy.deepcopy(train_data["data_samples"]))
    total, log_vars = model.parse_losses(losses)
    total.backward()
    exp["losses"] = OrderedDict((k, float(v)) for k, v in log_vars.items())
    exp["grads_all"] = OrderedDict(
        (n, float(p.grad.norm(2))) for n, p in model.named_parameters() if p.grad is not None
    )
    return v2_inputs(train_data["inputs"], train_data["data_samples"], with_seg), exp


def layout(config: str) -> dict:
    """Keys and shapes of the full-size MMDetection 3.3 standard config's model."""
    from mmengine.config import Config

    m = Config.fromfile(str(MMDET_CONFIGS / config)).model.to_dict()
    m["backbone"]["init_cfg"] = None
    m.pop("data_preprocessor", None)
    model = build_v3(m, with_seg=False)
    sd = model.state_dict()
    return {
        "config_path": "configs/" + config,
        "mmdet_version": "3.3.0",
        "num_params": sum(p.numel() for p in model.parameters()),
        "num_trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
    }


def fmt(obj, indent: int = 0) -> str:
    """A config value in v2 python syntax, keys in order."""
    pad = "    "
    if isinstance(obj, dict):
        one = "dict(" + ", ".join(f"{k}={fmt(v)}" for k, v in obj.items()) + ")"
        if len(one) + 4 * indent <= 88:
            return one
        items = [pad * (indent + 1) + f"{k}={fmt(v, indent + 1)}" for k, v in obj.items()]
        return "dict(\n" + ",\n".join(items) + ")"
    if isinstance(obj, (list, tuple)):
        o, c = ("[", "]") if isinstance(obj, list) else ("(", ")")
        tail = "," if isinstance(obj, tuple) and len(obj) == 1 else ""
        one = o + ", ".join(fmt(v) for v in obj) + tail + c
        if len(one) + 4 * indent <= 88:
            return one
        return o + "\n" + ",\n".join(pad * (indent + 1) + fmt(v, indent + 1) for v in obj) + c
    return repr(obj)


def write(name: str, header: str, model: dict, std_config: str, with_seg: bool, extra=None):
    """Train, compute and write ``tests/data/goldens/<name>/`` (module docstring)."""
    import mmcv
    import mmdet
    import mmengine

    out = ROOT / "tests" / "data" / "goldens" / name
    out.mkdir(parents=True, exist_ok=True)
    state = round_fp16(train_weights(name, model, with_seg))
    v2in, exp = compute(model, state, with_seg, extra)
    again = compute(model, state, with_seg, extra)[1]
    same = (
        all(
            torch.equal(a, b)
            for a, b in zip(
                exp["neck"] + exp["proposals"], again["neck"] + again["proposals"], strict=True
            )
        )
        and exp["losses"] == again["losses"]
    )
    text = header + "model = " + fmt(model) + "\n"
    ns: dict = {}
    exec(text, ns)  # round trip
    assert ns["model"] == model
    (out / "model.py").write_text(text)
    torch.save(
        {
            "state_dict": OrderedDict(
                (k, v.half() if v.is_floating_point() else v) for k, v in state.items()
            )
        },
        out / "weights.pth",
    )
    shared_inputs = out.parent / "zoo3_inputs.pt"
    if with_seg or not shared_inputs.exists():
        old = torch.load(shared_inputs, weights_only=False) if shared_inputs.exists() else None
        if old is not None:  # every family must see the same batch
            assert torch.equal(old["img"], v2in["img"]), "inputs differ between families"
            v2in = dict(old, **v2in)
        torch.save(v2in, shared_inputs)
    torch.save(exp, out / "expected.pt")
    (out / "layout.json").write_text(json.dumps(layout(std_config), separators=(",", ":")) + "\n")
    info = {
        "versions": {
            "mmdet": mmdet.__version__,
            "mmcv": mmcv.__version__,
            "mmengine": mmengine.__version__,
            "torch": torch.__version__,
        },
        "deterministic_in_process": bool(same),
        "num_params": sum(
            v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k
        ),
        "num_dets": [len(d["scores"]) for d in exp["dets"]],
        "top_scores": [float(d["scores"].max()) if len(d["scores"]) else None for d in exp["dets"]],
        "losses": exp["losses"],
        "img_metas": [
            {
                k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in m.items()
                if k != "img_norm_cfg"
            }
            for m in v2in["img_metas"]
        ],
    }
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info, indent=1))
