"""MMDetection-compatible ``tools/dataset_converters/pascal_voc.py``: same flags, runs
``detforge convert voc`` (``devkit_path [-o OUT_DIR] [--out-format pkl|coco]``)."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["convert", "voc", *sys.argv[1:]]))
