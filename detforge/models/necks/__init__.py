"""Necks (registered in ``MODELS``): ``FPN``, ``PAFPN``, ``NASFPN``, ``NASFCOS_FPN``, ``FPG``,
``BFP``, ``FPN_CARAFE``, ``ChannelMapper``."""

from detforge.models.necks.bfp import BFP
from detforge.models.necks.channel_mapper import ChannelMapper
from detforge.models.necks.fpg import FPG
from detforge.models.necks.fpn import FPN
from detforge.models.necks.fpn_carafe import FPN_CARAFE
from detforge.models.necks.nas_fpn import NASFPN
from detforge.models.necks.nasfcos_fpn import NASFCOS_FPN
from detforge.models.necks.pafpn import PAFPN

__all__ = ["BFP", "FPG", "FPN", "FPN_CARAFE", "NASFCOS_FPN", "NASFPN", "PAFPN", "ChannelMapper"]
