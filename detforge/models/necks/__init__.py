"""Necks (registered in ``MODELS``): ``FPN``, ``PAFPN``, ``NASFPN``, ``NASFCOS_FPN``, ``FPG``,
``BFP``, ``FPN_CARAFE``, ``ChannelMapper``, ``YOLOV3Neck``, ``YOLOXPAFPN``, ``SSDNeck``,
``DilatedEncoder``, ``CTResNetNeck``, ``HRFPN``, ``RFP``, ``DyHead``; a list of necks runs them in
sequence (``NeckSequence``)."""

from detforge.models.necks.bfp import BFP
from detforge.models.necks.channel_mapper import ChannelMapper
from detforge.models.necks.ct_resnet_neck import CTResNetNeck
from detforge.models.necks.dilated_encoder import DilatedEncoder
from detforge.models.necks.dyhead import DyHead
from detforge.models.necks.fpg import FPG
from detforge.models.necks.fpn import FPN
from detforge.models.necks.fpn_carafe import FPN_CARAFE
from detforge.models.necks.hrfpn import HRFPN
from detforge.models.necks.nas_fpn import NASFPN
from detforge.models.necks.nasfcos_fpn import NASFCOS_FPN
from detforge.models.necks.pafpn import PAFPN
from detforge.models.necks.rfp import ASPP, RFP
from detforge.models.necks.ssd_neck import SSDNeck
from detforge.models.necks.yolo_neck import YOLOV3Neck
from detforge.models.necks.yolox_pafpn import YOLOXPAFPN

__all__ = [
    "ASPP",
    "BFP",
    "FPG",
    "FPN",
    "FPN_CARAFE",
    "HRFPN",
    "NASFCOS_FPN",
    "NASFPN",
    "PAFPN",
    "RFP",
    "YOLOXPAFPN",
    "CTResNetNeck",
    "ChannelMapper",
    "DilatedEncoder",
    "DyHead",
    "SSDNeck",
    "YOLOV3Neck",
]
