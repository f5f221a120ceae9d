"""MMDetection-compatible ``tools/test.py``: same flags, runs ``detforge test``."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
