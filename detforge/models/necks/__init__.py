"""Necks (registered in ``MODELS``): ``FPN``, ``YOLOV3Neck``, ``YOLOXPAFPN``, ``SSDNeck``,
``DilatedEncoder``, ``CTResNetNeck``, ``HRFPN``, ``RFP``."""

from detforge.models.necks.ct_resnet_neck import CTResNetNeck
from detforge.models.necks.dilated_encoder import DilatedEncoder
from detforge.models.necks.fpn import FPN
from detforge.models.necks.hrfpn import HRFPN
from detforge.models.necks.rfp import ASPP, RFP
from detforge.models.necks.ssd_neck import SSDNeck
from detforge.models.necks.yolo_neck import YOLOV3Neck
from detforge.models.necks.yolox_pafpn import YOLOXPAFPN

__all__ = [
    "ASPP",
    "FPN",
    "HRFPN",
    "RFP",
    "YOLOXPAFPN",
    "CTResNetNeck",
    "DilatedEncoder",
    "SSDNeck",
    "YOLOV3Neck",
]
