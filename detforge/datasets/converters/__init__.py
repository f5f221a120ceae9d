"""Dataset converters: other annotation formats → COCO json (``detforge convert ...``).

=============  ==========================================  ==================================
converter      input                                       function
=============  ==========================================  ==================================
``voc``        Pascal VOC devkit (VOC2007/VOC2012)         :func:`voc_devkit_to_coco`
``xml``        any VOC-style folder (e.g. BCCD)            :func:`xml_to_coco`
``images``     a folder of images (test-only json)         :func:`images_to_coco`
``via``        VIA polygon json (the balloon tutorial)     :func:`via_to_coco`
``yolo``       YOLO txt labels + class names               :func:`yolo_to_coco`
``cityscapes`` Cityscapes gtFine (needs cityscapesscripts)  :func:`cityscapes_to_coco`
=============  ==========================================  ==================================

Every converter checks its input, drops what it cannot use and reports it in one summary line
(kinds, counts and the first few files; ``strict=True`` raises instead), shows a progress bar on a
terminal, and writes its output atomically. The COCO output has ``images`` (``id, file_name,
width, height``), ``annotations`` (``id, image_id, category_id, bbox [x, y, w, h], area,
iscrowd`` and ``segmentation`` where the source has one) and ``categories`` (``id, name``).
Ids start at 1 (Cityscapes categories keep their own ids); see
:mod:`detforge.datasets.converters._coco` for why.
"""

from detforge.datasets.converters._coco import (
    CocoBuilder,
    ConversionResult,
    read_class_names,
    validate_coco,
    write_json,
)
from detforge.datasets.converters.cityscapes import cityscapes_available, cityscapes_to_coco
from detforge.datasets.converters.images import images_to_coco
from detforge.datasets.converters.via import via_to_coco
from detforge.datasets.converters.voc import (
    middle_to_coco,
    parse_voc_xml,
    voc_devkit_to_coco,
    xml_to_coco,
)
from detforge.datasets.converters.yolo import yolo_to_coco

__all__ = [
    "CocoBuilder",
    "ConversionResult",
    "cityscapes_available",
    "cityscapes_to_coco",
    "images_to_coco",
    "middle_to_coco",
    "parse_voc_xml",
    "read_class_names",
    "validate_coco",
    "via_to_coco",
    "voc_devkit_to_coco",
    "write_json",
    "xml_to_coco",
    "yolo_to_coco",
]
