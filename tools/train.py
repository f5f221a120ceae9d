"""MMDetection-compatible ``tools/train.py``: same flags, runs ``detforge train``."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
