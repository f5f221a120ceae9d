"""MMDetection-compatible ``tools/dataset_converters/images2coco.py``: same flags and output
layout as v2 (file names prefixed with IMG_PATH, the json written to IMG_PATH/../annotations/OUT);
runs ``detforge convert images --v2-layout``."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["convert", "images", "--v2-layout", *sys.argv[1:]]))
