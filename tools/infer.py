"""``tools/infer.py``: same flags as ``detforge infer`` (images, folders, lists, videos)."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
