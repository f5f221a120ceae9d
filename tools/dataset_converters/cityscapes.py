"""MMDetection-compatible ``tools/dataset_converters/cityscapes.py``: same flags, runs
``detforge convert cityscapes`` (needs the ``cityscapesscripts`` package)."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["convert", "cityscapes", *sys.argv[1:]]))
