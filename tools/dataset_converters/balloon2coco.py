"""``balloon2coco.py ANN_FILE OUT_FILE [IMAGE_PREFIX]``: the balloon tutorial's
``convert_balloon_to_coco(ann_file, out_file, image_prefix)`` as a script; runs
``detforge convert via`` (VIA polygons, one class ``balloon`` unless ``--classes`` is given)."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["convert", "via", *sys.argv[1:]]))
