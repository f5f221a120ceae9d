"""MMDetection-compatible ``tools/misc/download_dataset.py``, without the download.

detforge never reaches the network, so this prints where each dataset comes from, the commands
to fetch and unpack it, and the folder layout the standard configs expect. v2's flags are
accepted (``--unzip``, ``--delete`` and ``--threads`` only change the printed commands).

Example::

    python tools/misc/download_dataset.py --dataset-name voc2007 --save-dir data
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["DATASETS", "describe", "main"]

DATASETS: dict[str, dict[str, object]] = {
    "coco2017": dict(
        title="COCO 2017 (instances; CC BY 4.0 annotations, Flickr image licences)",
        home="https://cocodataset.org/#download",
        root="data/coco",
        urls=[
            "http://images.cocodataset.org/zips/train2017.zip",
            "http://images.cocodataset.org/zips/val2017.zip",
            "http://images.cocodataset.org/zips/test2017.zip",
            "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        ],
        layout=[
            "annotations/instances_train2017.json",
            "annotations/instances_val2017.json",
            "train2017/000000000009.jpg ...  (118,287 images)",
            "val2017/000000000139.jpg ...    (5,000 images)",
            "test2017/                        (optional)",
        ],
    ),
    "lvis": dict(
        title="LVIS v1 (annotations only; the images are COCO 2017's)",
        home="https://www.lvisdataset.org/dataset",
        root="data/lvis_v1",
        urls=[
            "https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS/lvis_v1_train.json.zip",
            "https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS/lvis_v1_val.json.zip",
            "http://images.cocodataset.org/zips/train2017.zip",
            "http://images.cocodataset.org/zips/val2017.zip",
        ],
        layout=[
            "annotations/lvis_v1_train.json",
            "annotations/lvis_v1_val.json",
            "train2017/  (COCO 2017 train images, or a symlink to data/coco/train2017)",
            "val2017/    (COCO 2017 val images)",
        ],
    ),
    "voc2007": dict(
        title="Pascal VOC 2007",
        home="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/",
        root="data",
        urls=[
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCdevkit_08-Jun-2007.tar",
        ],
        layout=[
            "VOCdevkit/VOC2007/Annotations/000001.xml ...",
            "VOCdevkit/VOC2007/ImageSets/Main/{trainval,test}.txt",
            "VOCdevkit/VOC2007/JPEGImages/000001.jpg ...",
        ],
    ),
    "voc2012": dict(
        title="Pascal VOC 2012",
        home="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        root="data",
        urls=["http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"],
        layout=[
            "VOCdevkit/VOC2012/Annotations/2007_000027.xml ...",
            "VOCdevkit/VOC2012/ImageSets/Main/{train,val,trainval}.txt",
            "VOCdevkit/VOC2012/JPEGImages/2007_000027.jpg ...",
        ],
    ),
    "objects365v2": dict(
        title="Objects365 v2 (registration required)",
        home="https://www.objects365.org/download.html",
        root="data/Objects365/Obj365_v2",
        urls=[],
        layout=[
            "annotations/zhiyuan_objv2_train.json",
            "annotations/zhiyuan_objv2_val.json",
            "train/patch0/ ... patch50/",
            "val/images/v1/patch0/ ... val/images/v2/patch15/",
        ],
    ),
    "bccd": dict(
        title="BCCD blood-cell detection (MIT; Pascal VOC XML, 364 images, RBC/WBC/Platelets)",
        home="https://github.com/Shenggan/BCCD_Dataset",
        root="data/bccd",
        urls=["https://github.com/Shenggan/BCCD_Dataset/archive/refs/heads/master.zip"],
        layout=[
            "BCCD/Annotations/BloodImage_00000.xml ...",
            "BCCD/ImageSets/Main/{train,val,trainval,test}.txt",
            "BCCD/JPEGImages/BloodImage_00000.jpg ...",
            "(configs/_base_/datasets/bccd_detection.py; DETFORGE_DATASETS=<root>/ points there)",
        ],
    ),
}


def describe(name: str, save_dir: str | None = None, unzip: bool = False,
             delete: bool = False, threads: int = 4) -> str:  # fmt: skip
    """The text printed for one dataset (``name`` as in ``--dataset-name``).

    Example:
        >>> 'VOCdevkit/VOC2007/JPEGImages' in describe('voc2007')
        True
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    info = DATASETS[name]
    root = (save_dir or str(info["root"])).rstrip("/")
    urls = list(info["urls"])  # type: ignore[call-overload]
    lines = [f"== {name}: {info['title']}", f"Get it from: {info['home']}"]
    if urls:
        lines.append("Files (download them yourself; nothing is fetched here):")
        lines += [f"  {url}" for url in urls]
        lines.append("For example:")
        lines.append(f"  mkdir -p {root} && cd {root}")
        lines.append(f"  wget -c {' '.join(urls) if len(urls) < 2 else '<each URL above>'}")
        if unzip:
            lines.append(
                '  for f in *.zip; do unzip -q "$f"; done; for f in *.tar; do tar xf "$f"; done'
            )
        if delete:
            lines.append("  rm -f *.zip *.tar   # --delete: remove the archives after unpacking")
        if threads > 1:
            lines.append(f"  (several at once: xargs -P {threads} -n 1 wget -c < urls.txt)")
    else:
        lines.append("The files are distributed after registration on the page above.")
    lines.append(f"Expected layout under {root}/:")
    lines += [f"  {root}/{entry}" for entry in info["layout"]]  # type: ignore[attr-defined]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the download instructions; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset-name", type=str, default="coco2017",
        help=f"dataset name: {', '.join(DATASETS)} or all",
    )  # fmt: skip
    parser.add_argument("--save-dir", type=str, default=None, help="the dataset folder")
    parser.add_argument("--unzip", action="store_true", help="show the unpacking commands")
    parser.add_argument("--delete", action="store_true", help="show removing the archives")
    parser.add_argument("--threads", type=int, default=4, help="parallel downloads to suggest")
    args = parser.parse_args(argv)
    names = list(DATASETS) if args.dataset_name == "all" else [args.dataset_name]
    if any(name not in DATASETS for name in names):
        parser.error(f"unknown --dataset-name {args.dataset_name!r}; choose from "
                     f"{', '.join(DATASETS)} or all")  # fmt: skip
    print("detforge downloads nothing (no network access); fetch the files below yourself.\n")
    print("\n\n".join(
        describe(n, args.save_dir, args.unzip, args.delete, args.threads) for n in names
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
