"""Image reading, geometry and colour operations with mmcv 1.x's exact numeric behaviour.

Images are ``ndarray[H, W, C]`` or ``ndarray[H, W]``, BGR unless said otherwise. ``size`` and
``old_size`` are ``(w, h)``, ``shape`` is ``(h, w)``. Inputs are never modified.

Submodules: :mod:`~detforge.utils.image.io` (reading and writing),
:mod:`~detforge.utils.image.geometry` (resize, flip, crop, pad),
:mod:`~detforge.utils.image.warp` (rotate, shear, translate),
:mod:`~detforge.utils.image.colour` (normalisation, colour spaces, enhancements) and
:mod:`~detforge.utils.image.corruptions` (the robustness benchmark's corruptions).
"""

from detforge.utils.image.colour import (
    adjust_brightness,
    adjust_color,
    adjust_contrast,
    bgr2gray,
    bgr2hsv,
    bgr2rgb,
    gray2bgr,
    hsv2bgr,
    imdenormalize,
    imequalize,
    imnormalize,
    rgb2bgr,
)
from detforge.utils.image.corruptions import corrupt
from detforge.utils.image.geometry import INTERPOLATION_CODES as INTERPOLATION_CODES
from detforge.utils.image.geometry import (
    imcrop,
    imflip,
    impad,
    impad_to_multiple,
    imrescale,
    imresize,
    rescale_size,
)
from detforge.utils.image.io import ImageLoadError, exif_orientation, imfrombytes, imread, imwrite
from detforge.utils.image.warp import imrotate, imshear, imtranslate

__all__ = [
    "ImageLoadError",
    "adjust_brightness",
    "adjust_color",
    "adjust_contrast",
    "bgr2gray",
    "bgr2hsv",
    "bgr2rgb",
    "corrupt",
    "exif_orientation",
    "gray2bgr",
    "hsv2bgr",
    "imcrop",
    "imdenormalize",
    "imequalize",
    "imflip",
    "imfrombytes",
    "imnormalize",
    "impad",
    "impad_to_multiple",
    "imread",
    "imrescale",
    "imresize",
    "imrotate",
    "imshear",
    "imtranslate",
    "imwrite",
    "rescale_size",
    "rgb2bgr",
]
