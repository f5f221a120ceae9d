# Module globals: modules and functions are dropped, everything else is a key.
import os.path as osp
from math import pi


def scale(x):
    return 2 * x


img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
doubled = scale(21)
here = osp.basename(__file__)
circle = pi
_private = 'kept'
