"""``detforge convert FORMAT ...``: turn other annotation formats into COCO json.

  voc         Pascal VOC devkit → voc07_train.json ... (or v2 middle-format .pkl, the default)
  xml         any VOC-style folder (XML files + image-id list), e.g. BCCD → one json
  images      a folder of images → test-only json (no annotations)
  via         VIA polygon json (balloon tutorial) → json with polygon masks
  yolo        YOLO txt labels + class names → json
  cityscapes  Cityscapes gtFine → instancesonly_filtered_gtFine_*.json (needs cityscapesscripts)

Dropped items (zero-size boxes, malformed lines, unreadable images, ...) are reported in one
line per output; --strict stops at the first one instead. Ids in the json start at 1.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from detforge.datasets.converters import ConversionResult

__all__ = ["add_parser", "run"]

# The converters import detforge.datasets (and torch): they are imported when a conversion runs,
# so that other subcommands start fast.

Handler = Callable[[argparse.Namespace], Sequence["ConversionResult"]]


def _classes(values: Sequence[str]) -> Sequence[str] | str:
    """A single existing file is a class-names file (v2's rule for ``classes``)."""
    if len(values) == 1 and os.path.isfile(values[0]):
        return values[0]
    return list(values)


def _voc(args: argparse.Namespace) -> Sequence[ConversionResult]:
    from detforge.datasets.converters import voc_devkit_to_coco

    return voc_devkit_to_coco(
        args.devkit_path, args.out_dir, out_format=args.out_format, strict=args.strict
    )


def _xml(args: argparse.Namespace) -> Sequence[ConversionResult]:
    from detforge.datasets.converters import xml_to_coco

    fmt: Literal["coco", "pkl"] = "pkl" if args.out.endswith(".pkl") else "coco"
    result = xml_to_coco(
        args.root,
        args.ann_file,
        _classes(args.classes),
        args.out,
        ann_subdir=args.ann_subdir,
        img_subdir=args.img_subdir,
        img_suffix=args.img_suffix,
        out_format=fmt,
        strict=args.strict,
    )
    return [result]


def _images(args: argparse.Namespace) -> Sequence[ConversionResult]:
    from detforge.datasets.converters import images_to_coco, write_json
    from detforge.datasets.issues import DatasetError

    if not args.out.endswith(".json"):
        raise DatasetError(f"the output file must end with .json, got {args.out!r}")
    out = Path(args.out)
    result = images_to_coco(
        args.img_path,
        args.classes,
        None if args.v2_layout else out,
        exclude_extensions=args.exclude_extensions,
        check_images=args.check_images,
        strict=args.strict,
    )
    if args.v2_layout:
        # MMDetection v2: file names carry IMG_PATH, the json goes to IMG_PATH/../annotations/.
        for image in result.data["images"]:
            image["file_name"] = os.path.join(args.img_path, image["file_name"])
        result.out_file = write_json(result.data, Path(args.img_path, "..", "annotations") / out)
    return [result]


def _via(args: argparse.Namespace) -> Sequence[ConversionResult]:
    from detforge.datasets.converters import via_to_coco

    result = via_to_coco(
        args.ann_file,
        args.out,
        img_dir=args.img_dir,
        classes=_classes(args.classes),
        class_attribute=args.class_attribute,
        strict=args.strict,
    )
    return [result]


def _yolo(args: argparse.Namespace) -> Sequence[ConversionResult]:
    from detforge.datasets.converters import yolo_to_coco

    result = yolo_to_coco(
        args.img_dir,
        args.classes,
        args.out,
        labels_dir=args.labels_dir,
        check_images=args.check_images,
        strict=args.strict,
    )
    return [result]


def _cityscapes(args: argparse.Namespace) -> Sequence[ConversionResult]:
    from detforge.datasets.converters import cityscapes_available, cityscapes_to_coco
    from detforge.datasets.issues import DatasetError

    if not cityscapes_available():
        raise DatasetError(
            "needs the package 'cityscapesscripts', which is not installed "
            "(pip install cityscapesscripts)"
        )
    return cityscapes_to_coco(
        args.cityscapes_path,
        args.out_dir,
        img_dir=args.img_dir,
        gt_dir=args.gt_dir,
        nproc=args.nproc,
        strict=args.strict,
    )


def _sub(
    subs: Any, name: str, handler: Handler, help_text: str, description: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subs.add_parser(name, help=help_text, description=description)
    parser.set_defaults(convert=handler)
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first bad item instead of dropping it"
    )
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert VOC, YOLO, VIA, image folders, Cityscapes to COCO json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subs = parser.add_subparsers(dest="converter", metavar="FORMAT", required=True)

    p = _sub(subs, "voc", _voc, "Pascal VOC devkit", "Convert a VOCdevkit (v2 pascal_voc.py).")
    p.add_argument("devkit_path", help="folder holding VOC2007 and/or VOC2012")
    p.add_argument("-o", "--out-dir", help="output folder (default: devkit_path)")
    p.add_argument(
        "--out-format",
        default="pkl",
        choices=("pkl", "coco"),
        help="'coco' writes json, 'pkl' the v2 middle format (default: pkl, as v2)",
    )

    p = _sub(subs, "xml", _xml, "any VOC-style folder", "Convert XML annotations listed by id.")
    p.add_argument("root", help="dataset folder (XMLDataset's img_prefix)")
    p.add_argument("ann_file", help="image-id list, e.g. ImageSets/Main/train.txt (under ROOT)")
    p.add_argument("out", help="output .json (COCO) or .pkl (v2 middle format)")
    p.add_argument(
        "--classes", nargs="+", required=True, help="class names, or one file of class names"
    )
    p.add_argument("--ann-subdir", default="Annotations", help="XML folder under ROOT")
    p.add_argument("--img-subdir", default="JPEGImages", help="image folder under ROOT")
    p.add_argument("--img-suffix", default=".jpg", help="image file extension")

    p = _sub(subs, "images", _images, "image folder", "Build a test-only json (v2 images2coco).")
    p.add_argument("img_path", help="folder of images (searched recursively)")
    p.add_argument("classes", help="text file with one class name per line")
    p.add_argument("out", help="output .json")
    p.add_argument(
        "-e", "--exclude-extensions", nargs="+", help="extensions to leave out, e.g. png bmp"
    )
    p.add_argument("--check-images", action="store_true", help="decode every image fully")
    p.add_argument(
        "--v2-layout",
        action="store_true",
        help="as v2: prefix file names with IMG_PATH and write OUT to IMG_PATH/../annotations/",
    )

    p = _sub(subs, "via", _via, "VIA polygon json", "Convert a VIA export (balloon tutorial).")
    p.add_argument("ann_file", help="VIA json, e.g. balloon/train/via_region_data.json")
    p.add_argument("out", help="output .json")
    p.add_argument("img_dir", nargs="?", help="image folder (default: the folder of ANN_FILE)")
    p.add_argument(
        "--classes", nargs="+", default=["balloon"], help="class names (default: balloon)"
    )
    p.add_argument(
        "--class-attribute", help="region attribute holding the class (needed for >1 class)"
    )

    p = _sub(subs, "yolo", _yolo, "YOLO txt labels", "Convert YOLO labels (cls cx cy w h).")
    p.add_argument("img_dir", help="image folder, e.g. coco8/images/train")
    p.add_argument("classes", help="class names: text file (one per line) or YOLO data .yaml")
    p.add_argument("out", help="output .json")
    p.add_argument("--labels-dir", help="label folder (default: IMG_DIR with images/ -> labels/)")
    p.add_argument("--check-images", action="store_true", help="decode every image fully")

    p = _sub(subs, "cityscapes", _cityscapes, "Cityscapes gtFine", "Convert Cityscapes (v2).")
    p.add_argument("cityscapes_path", help="Cityscapes folder")
    p.add_argument("--img-dir", default="leftImg8bit", help="image folder under the path")
    p.add_argument("--gt-dir", default="gtFine", help="annotation folder under the path")
    p.add_argument("-o", "--out-dir", help="output folder (default: cityscapes_path)")
    p.add_argument("--nproc", default=1, type=int, help="worker processes")

    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    handler: Handler = args.convert
    results = handler(args)  # a DatasetError or OSError is one line (detforge.cli.main)
    for result in results:
        print(f"wrote {result.describe()}")
        for note in result.notes:
            print(f"  note: {note}")
    return 0
