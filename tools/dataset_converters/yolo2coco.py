"""``yolo2coco.py IMG_DIR CLASSES OUT [--labels-dir DIR]``: YOLO txt labels to COCO json; runs
``detforge convert yolo``."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["convert", "yolo", *sys.argv[1:]]))
